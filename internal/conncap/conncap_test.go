package conncap_test

import (
	"net"
	"testing"
	"time"

	"github.com/brookhq/brook/internal/conncap"
)

// accepted dials addr from the local address from, and reports whether
// the listener kept the connection (it answers nothing: a closed one
// reads EOF at once, a kept one times out).
func accepted(t *testing.T, addr, from string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	ne, ok := err.(net.Error)
	return c, ok && ne.Timeout()
}

// Past the total cap, one address gets only its share of the overflow:
// a flood from it cannot take the places another address's health check
// needs.
func TestOverflowPerAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := conncap.Wrap(ln, conncap.Options{Total: 2, Overflow: 10, OverflowPerAddress: 2, OverflowLifetime: time.Minute})
	defer l.Close()
	go func() {
		for {
			if _, err := l.Accept(); err != nil {
				return // the connections stay open: the test holds them
			}
		}
	}()
	addr := ln.Addr().String()
	var kept []net.Conn
	defer func() {
		for _, c := range kept {
			c.Close()
		}
	}()
	for i := 0; i < 6; i++ { // 2 within the cap, 2 of the overflow, 2 refused
		c, ok := accepted(t, addr, "127.0.0.1")
		kept = append(kept, c)
		if want := i < 4; ok != want {
			t.Fatalf("connection %d from the flooding address: kept %v, want %v", i+1, ok, want)
		}
	}
	if c, ok := accepted(t, addr, "127.0.0.2"); !ok {
		t.Fatal("another address found the overflow taken")
	} else {
		kept = append(kept, c)
	}
	if open, overflow := l.Stats(); open != 2 || overflow != 3 {
		t.Fatalf("stats: %d open, %d overflow; want 2 and 3", open, overflow)
	}
}
