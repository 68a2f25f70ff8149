package linkpreview

import "net/netip"

// Exempt lets f connect to addrs despite the guard.
func (f *Fetcher) Exempt(addrs ...netip.Addr) { f.exempt = addrs }

// PublicAddr exposes publicAddr to the tests.
var PublicAddr = publicAddr
