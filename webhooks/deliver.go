package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/brookhq/brook/store"
)

// Headers of a delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>" keyed with the webhook's secret>", as Stripe's does.
	SignatureHeader = "X-Brook-Signature"
	// DeliveryHeader carries the delivery's id: the same on every attempt,
	// so a receiver can drop repeats.
	DeliveryHeader = "X-Brook-Delivery"
	// EventHeader carries the event type.
	EventHeader = "X-Brook-Event"
)

// Sign returns the signature header's value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against body and secret, refusing one
// whose timestamp is more than tolerance away from now: what a receiver
// written in Go does (the docs show it in Node too).
func Verify(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(part), []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sigs = append(sigs, string(v))
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhooks: signature has no timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhooks: signature timestamp outside the tolerance")
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("webhooks: signature does not match")
}

// deliverLoop claims due deliveries while slots are free and sends each in
// a goroutine of its own, at most Concurrency at once and PerWebhook per
// webhook. It polls only while some webhook is registered: with none, it
// costs no SQL.
func (s *Service) deliverLoop(ctx context.Context) {
	var (
		mu       sync.Mutex
		inFlight int
		perHook  = map[string]int{}
		sending  sync.WaitGroup
	)
	defer sending.Wait()
	for {
		if len(*s.hooks.Load()) > 0 && ctx.Err() == nil {
			mu.Lock()
			free := s.opts.Concurrency - inFlight
			var busy []string
			for h, n := range perHook {
				if n >= s.opts.PerWebhook {
					busy = append(busy, h)
				}
			}
			mu.Unlock()
			if free > 0 {
				lease := s.opts.Timeout + 30*time.Second
				ds, err := s.store.ClaimDeliveries(ctx, free, s.opts.PerWebhook, busy, lease)
				if err != nil && ctx.Err() == nil {
					s.log.Warn("webhooks: claim deliveries", "err", err)
				}
				for _, d := range ds {
					mu.Lock()
					inFlight++
					perHook[d.Webhook]++
					mu.Unlock()
					sending.Add(1)
					go func() {
						defer sending.Done()
						s.deliver(context.WithoutCancel(ctx), d)
						mu.Lock()
						inFlight--
						if perHook[d.Webhook]--; perHook[d.Webhook] == 0 {
							delete(perHook, d.Webhook)
						}
						mu.Unlock()
						s.Wake() // a slot is free, and the key's next delivery may be due
					}()
				}
				if len(ds) == free {
					continue // more may be due
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-time.After(s.opts.Poll):
		}
	}
}

// deliver sends one attempt of d and records its outcome.
func (s *Service) deliver(ctx context.Context, d *store.WebhookDelivery) {
	var hook *store.Webhook
	for _, h := range *s.hooks.Load() {
		if h.ID == d.Webhook {
			hook = h
		}
	}
	if hook == nil {
		// Created on another node a moment ago, or deleted: read it.
		if err := s.Load(ctx); err == nil {
			for _, h := range *s.hooks.Load() {
				if h.ID == d.Webhook {
					hook = h
				}
			}
		}
	}
	var o store.DeliveryOutcome
	if hook == nil {
		o = store.DeliveryOutcome{Error: "webhook not found"}
	} else {
		o = s.post(ctx, hook, d)
	}
	if o.Status != store.DeliveryDelivered {
		if d.Attempts+1 >= s.opts.MaxAttempts {
			o.Status = store.DeliveryParked
		} else {
			o.Status = store.DeliveryFailed
			o.NextAt = time.Now().Add(s.backoff(d.Attempts + 1))
		}
	}
	// The outcome must be recorded even as the node stops; its own short
	// deadline keeps a stop from waiting on a hung PostgreSQL for long.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.store.FinishDelivery(fctx, d.ID, o); err != nil {
		s.log.Warn("webhooks: record delivery; its lease runs out and it is sent again", "delivery", d.ID, "err", err)
	}
}

// post sends d to hook once, within Timeout.
func (s *Service) post(ctx context.Context, hook *store.Webhook, d *store.WebhookDelivery) store.DeliveryOutcome {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	body := []byte(d.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return store.DeliveryOutcome{Error: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Brook-Webhooks/1")
	req.Header.Set(SignatureHeader, Sign(hook.Secret, time.Now(), body))
	req.Header.Set(DeliveryHeader, d.ID.String())
	req.Header.Set(EventHeader, d.EventType)
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return store.DeliveryOutcome{Error: err.Error()}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return store.DeliveryOutcome{Status: store.DeliveryDelivered, HTTPStatus: resp.StatusCode}
	}
	return store.DeliveryOutcome{HTTPStatus: resp.StatusCode, Error: "HTTP " + strconv.Itoa(resp.StatusCode)}
}

// backoff is the wait before attempt n+1 after n failures: RetryBase
// doubled n-1 times, at most RetryMax, ±20% jitter so receivers that come
// back are not hit by every retry at once.
func (s *Service) backoff(n int) time.Duration {
	d := s.opts.RetryBase
	for i := 1; i < n && d < s.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, s.opts.RetryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
