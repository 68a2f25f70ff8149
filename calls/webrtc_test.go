package calls_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/brookhq/brook/internal/brooktest"
	"github.com/brookhq/brook/internal/client"
)

// Two real WebRTC peers (pion) connect through Brook: each joins the call
// over GraphQL, subscribes to callEvents over WebSocket, and exchanges the
// offer, the answer and trickled ICE candidates only through sendSignal.
// Then a data channel opens between them on loopback and carries a
// message each way. Once with both peers on one Brook node, once with
// each on its own node (signals cross nodes through Redis).
func TestCallWebRTCPeers(t *testing.T) {
	t.Parallel()
	for _, nodes := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d nodes", nodes), func(t *testing.T) {
			t.Parallel()
			a := env.StartNode(t, brooktest.NodeOptions{})
			b := a
			if nodes == 2 {
				b = env.StartNode(t, brooktest.NodeOptions{})
			}
			tag := brooktest.Tag()
			alice, bob := "alice-"+tag, "bob-"+tag
			env.AddUsers(t, a, alice, bob)
			cid := createCall(t, a, alice, "default", "webrtc-"+tag, bob)

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			pa := newRTCPeer(t, ctx, a, alice, joinCall(t, a, alice, cid).JoinCall.Participant.ID)
			jb := joinCall(t, b, bob, cid).JoinCall
			pb := newRTCPeer(t, ctx, b, bob, jb.Participant.ID)
			if len(jb.Others) != 1 || jb.Others[0].ID != pa.pid {
				t.Fatalf("bob's join saw %+v", jb.Others)
			}

			// Bob, the newcomer, calls alice (joinCall named her among the
			// others); alice answers whoever offers.
			pb.mu.Lock()
			pb.remote = pa.pid
			pb.mu.Unlock()
			dc, err := pb.pc.CreateDataChannel("brook", nil)
			if err != nil {
				t.Fatal(err)
			}
			pb.useChannel(dc, "hello from bob")
			pa.pc.OnDataChannel(func(dc *webrtc.DataChannel) { pa.useChannel(dc, "hello from alice") })
			offer, err := pb.pc.CreateOffer(nil)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(offer.SDP, "a=candidate") {
				t.Fatal("the offer carries candidates; they must trickle through sendSignal")
			}
			if err := pb.pc.SetLocalDescription(offer); err != nil {
				t.Fatal(err)
			}
			pb.send(pa.pid, "OFFER", offer)

			for _, p := range []*rtcPeer{pa, pb} {
				select {
				case msg := <-p.received:
					want := "hello from alice"
					if p == pa {
						want = "hello from bob"
					}
					if msg != want {
						t.Fatalf("%s received %q, want %q", p.user, msg, want)
					}
				case err := <-p.errs:
					t.Fatalf("%s: %v", p.user, err)
				case <-ctx.Done():
					t.Fatalf("%s: no data channel message: ICE %s, %d candidates received", p.user, p.pc.ICEConnectionState(), p.candidatesIn.Load())
				}
			}
			// ICE may complete through peer-reflexive candidates before the
			// last trickled ones arrive; all of them do arrive.
			for _, p := range []*rtcPeer{pa, pb} {
				brooktest.Eventually(t, p.user+" sends and receives ICE candidates through Brook", func() bool {
					return p.candidatesIn.Load() > 0 && p.candidatesOut.Load() > 0
				})
				select {
				case err := <-p.errs:
					t.Fatalf("%s: %v", p.user, err)
				default:
				}
			}
		})
	}
}

// rtcPeer is a pion peer connection whose signaling goes through Brook.
type rtcPeer struct {
	user   string
	pid    string
	client *client.Client
	pc     *webrtc.PeerConnection

	mu         sync.Mutex
	remote     string // the other participant, learned from its first signal
	haveRemote bool
	pending    []webrtc.ICECandidateInit

	candidatesIn, candidatesOut atomic.Int32
	received                    chan string
	errs                        chan error
}

func newRTCPeer(t *testing.T, ctx context.Context, n *brooktest.Node, user, pid string) *rtcPeer {
	t.Helper()
	// Host candidates on loopback only: no network, no STUN, no mDNS.
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	p := &rtcPeer{user: user, pid: pid, client: n.Client(env.Token(t, user)), pc: pc,
		received: make(chan string, 1), errs: make(chan error, 8)}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		p.mu.Lock()
		to := p.remote
		p.mu.Unlock()
		p.candidatesOut.Add(1)
		p.send(to, "ICE_CANDIDATE", c.ToJSON())
	})
	sub := subscribeCallEvents(t, n, user, pid)
	go p.relay(ctx, sub.Subscription)
	return p
}

// send relays a signal to the other participant through sendSignal.
func (p *rtcPeer) send(to, kind string, v any) {
	p.mu.Lock()
	if p.remote == "" {
		p.remote = to
	}
	to = p.remote
	p.mu.Unlock()
	payload, _ := json.Marshal(v)
	err := p.client.Run(context.Background(), `mutation($p: ID!, $to: ID!, $k: SignalKind!, $pl: String!) {
		sendSignal(participant: $p, to: $to, kind: $k, payload: $pl) { id } }`,
		brooktest.Vars{"p": p.pid, "to": to, "k": kind, "pl": string(payload)}, nil)
	if err != nil {
		p.fail(fmt.Errorf("sendSignal %s: %w", kind, err))
	}
}

func (p *rtcPeer) fail(err error) {
	select {
	case p.errs <- err:
	default:
	}
}

// relay applies the signals callEvents delivers, in order.
func (p *rtcPeer) relay(ctx context.Context, sub *client.Subscription) {
	for {
		r, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.fail(fmt.Errorf("callEvents: %w", err))
			}
			return
		}
		var data struct{ CallEvents callEvent }
		if err := r.Decode(&data); err != nil {
			p.fail(err)
			return
		}
		ev := data.CallEvents
		if ev.Type != "signal" {
			continue
		}
		if err := p.apply(ev.Signal.From.ID, ev.Signal.Kind, ev.Signal.Payload); err != nil {
			p.fail(fmt.Errorf("apply %s: %w", ev.Signal.Kind, err))
			return
		}
	}
}

func (p *rtcPeer) apply(from, kind, payload string) error {
	p.mu.Lock()
	if p.remote == "" {
		p.remote = from
	}
	p.mu.Unlock()
	switch kind {
	case "OFFER", "ANSWER":
		var sd webrtc.SessionDescription
		if err := json.Unmarshal([]byte(payload), &sd); err != nil {
			return err
		}
		if err := p.pc.SetRemoteDescription(sd); err != nil {
			return err
		}
		p.mu.Lock()
		p.haveRemote = true
		pending := p.pending
		p.pending = nil
		p.mu.Unlock()
		for _, c := range pending {
			if err := p.pc.AddICECandidate(c); err != nil {
				return err
			}
		}
		if kind == "OFFER" {
			answer, err := p.pc.CreateAnswer(nil)
			if err != nil {
				return err
			}
			if err := p.pc.SetLocalDescription(answer); err != nil {
				return err
			}
			p.send(from, "ANSWER", answer)
		}
	case "ICE_CANDIDATE":
		var c webrtc.ICECandidateInit
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			return err
		}
		p.candidatesIn.Add(1)
		p.mu.Lock()
		if !p.haveRemote {
			// Trickled candidates can overtake the description they belong to.
			p.pending = append(p.pending, c)
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		return p.pc.AddICECandidate(c)
	}
	return nil
}

// useChannel sends hello once the data channel opens and reports the
// first message received.
func (p *rtcPeer) useChannel(dc *webrtc.DataChannel, hello string) {
	dc.OnOpen(func() {
		if err := dc.SendText(hello); err != nil {
			p.fail(err)
		}
	})
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case p.received <- string(m.Data):
		default:
		}
	})
}
