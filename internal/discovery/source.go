package discovery

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
)

// StaticSource is a fixed list of candidate gRPC addresses (--join).
type StaticSource []string

// Addresses returns the list, trimmed and without empty entries.
func (s StaticSource) Addresses(context.Context) ([]string, error) {
	out := make([]string, 0, len(s))
	for _, a := range s {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out, nil
}

// ParseJoinList splits a comma-separated --join value into a StaticSource.
func ParseJoinList(list string) StaticSource {
	src, _ := StaticSource(strings.Split(list, ",")).Addresses(context.Background())
	return src
}

// Resolver is the part of *net.Resolver used for DNS discovery, so tests can
// substitute a fake.
type Resolver interface {
	// LookupIPAddr returns the A and AAAA records of host.
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// DNSSource lists the A/AAAA records of a name (a Kubernetes headless
// service) as host:port candidates.
type DNSSource struct {
	// Name is the DNS name to look up.
	Name string
	// Port is the gRPC port peers listen on.
	Port string
	// Resolver performs lookups (default net.DefaultResolver).
	Resolver Resolver
}

// NewDNSSource builds a DNSSource from a --discover-dns value, which is a
// name or name:port; defaultPort is used when no port is given.
func NewDNSSource(value, defaultPort string, r Resolver) (*DNSSource, error) {
	name, port := value, defaultPort
	if h, p, err := net.SplitHostPort(value); err == nil {
		name, port = h, p
	}
	if name == "" || port == "" {
		return nil, fmt.Errorf("%w: --discover-dns %q needs a name and a port", ErrConfig, value)
	}
	return &DNSSource{Name: name, Port: port, Resolver: r}, nil
}

// Addresses resolves the name and returns one host:port per distinct IP,
// sorted.
func (d *DNSSource) Addresses(ctx context.Context) ([]string, error) {
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupIPAddr(ctx, d.Name)
	if err != nil {
		return nil, fmt.Errorf("discovery: lookup %s: %w", d.Name, err)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		a := net.JoinHostPort(ip.String(), d.Port)
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}
