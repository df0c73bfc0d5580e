package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// NewHTTPClient returns the client deliveries are sent with: it follows no
// redirect (a 3xx is a failed delivery, retried, never a POST re-aimed at
// another host), uses no proxy (the address checks below would otherwise
// see only the proxy), bounds every phase of a request by timeout, and,
// unless allowPrivate, refuses to connect to loopback, private, link-local,
// unspecified and multicast addresses. The check runs on the address
// actually dialled, after name resolution, so a name that resolves to an
// internal address (DNS rebinding) is refused too.
//
// Endpoints are configured by admins only; the check keeps a leaked admin
// key or a careless URL from turning stockd into a probe of the network it
// runs in (SSRF).
func NewHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			return checkDialAddress(address)
		}
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    min(timeout, 10*time.Second),
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// errPrivateAddress is the refusal of an address inside the network.
var errPrivateAddress = errors.New("the address is loopback, private, link-local or otherwise internal; serve with --webhook-allow-private to allow it")

// checkDialAddress refuses an internal address, as dialled ("ip:port").
func checkDialAddress(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook: dialling %q: not an IP address", address)
	}
	if internal(ip) {
		return fmt.Errorf("webhook: refusing to connect to %s: %w", ip, errPrivateAddress)
	}
	return nil
}

// internal reports whether ip is an address inside the network stockd runs
// in rather than on the internet.
func internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range internalPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// internalPrefixes are the ranges Go's predicates leave out: carrier-grade
// NAT, "this network", benchmarking, the IPv4 reserved block and IPv6's
// NAT64 and discard prefixes.
var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("100::/64"),
}

// checkURL refuses a URL deliveries cannot or must not go to: not http or
// https, without a host, or carrying credentials (which every answer and log
// naming the endpoint would show; the signature is how a receiver knows the
// sender). With allowPrivate false, a literal internal IP is refused at once;
// names are checked when dialled.
func checkURL(raw string, allowPrivate bool) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("url is required")
	}
	if len(raw) > 2048 {
		return nil, errors.New("url is longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url %q does not parse", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("url has no host")
	}
	if u.User != nil {
		return nil, errors.New("url must not carry credentials (user:password@): answers and logs would show them; receivers check the signature instead")
	}
	if u.Fragment != "" {
		return nil, errors.New("url must not have a #fragment")
	}
	if !allowPrivate {
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && internal(ip) {
			return nil, fmt.Errorf("url names %s: %w", ip, errPrivateAddress)
		}
		if u.Hostname() == "localhost" {
			return nil, fmt.Errorf("url names localhost: %w", errPrivateAddress)
		}
	}
	return u, nil
}
