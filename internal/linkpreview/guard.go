package linkpreview

import (
	"fmt"
	"net/netip"
	"slices"
	"syscall"
)

// refused are address ranges no preview fetch may connect to, besides
// those netip classifies (loopback, private, link-local, multicast,
// unspecified): they reach the host itself, the provider's network or
// nowhere public.
var refused = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated) forms, :: and ::1
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may reach private IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds any IPv4
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
}

// publicAddr reports why addr must not be connected to, or "" when it may.
// IPv4-mapped IPv6 forms (::ffff:127.0.0.1) are judged as the IPv4 address
// they carry.
func publicAddr(addr netip.Addr) string {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return "not an address"
	case addr.IsLoopback():
		return "loopback"
	case addr.IsPrivate():
		return "private"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast(), addr.IsInterfaceLocalMulticast():
		return "link-local"
	case addr.IsMulticast():
		return "multicast"
	case addr.IsUnspecified():
		return "unspecified"
	}
	for _, p := range refused {
		if p.Contains(addr) {
			return "reserved"
		}
	}
	return ""
}

// control is the net.Dialer Control function of the fetcher: it runs for
// every connection, redirects included, with the address DNS resolved to,
// so a name that resolves (or rebinds) to a private address is refused at
// the moment of connecting, not only when first looked up.
func (f *Fetcher) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &refusedError{msg: fmt.Sprintf("cannot parse address %q", address)}
	}
	if f.ports != nil && !slices.Contains(f.ports, ap.Port()) {
		return &refusedError{msg: fmt.Sprintf("port %d is not allowed (BROOK_PREVIEW_PORTS)", ap.Port())}
	}
	if !f.opts.AllowPrivate && !slices.Contains(f.exempt, ap.Addr()) {
		if why := publicAddr(ap.Addr()); why != "" {
			return &refusedError{msg: fmt.Sprintf("address %s is %s", ap.Addr(), why)}
		}
	}
	return nil
}

// refusedError is a connection the guard refused.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return "linkpreview: refused: " + e.msg }
