package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"
)

// machine answers the two questions choosing an advertised address asks of
// the host: its name, and what that name resolves to.
type machine struct {
	hostname func() (string, error)
	lookupIP func(ctx context.Context, host string) ([]net.IP, error)
}

// thisMachine asks the operating system and its resolver.
var thisMachine = machine{
	hostname: os.Hostname,
	lookupIP: func(ctx context.Context, host string) ([]net.IP, error) {
		return net.DefaultResolver.LookupIP(ctx, "ip", host)
	},
}

// advertiseAddr picks the address other nodes and clients are told to dial
// for a server listening on listen (flag names the listen flag, for
// messages). The rule:
//
//   - an advertise address, when given, is used as it is; it must name a
//     host, not a wildcard (0.0.0.0, ::) or nothing;
//   - otherwise a listen address that names a host is advertised as it is;
//   - otherwise (listening on every interface) the machine's hostname is
//     advertised with the listen port, when it resolves and every address it
//     resolves to is not loopback; if not, it is an error asking for the
//     advertise flag.
//
// A wildcard is never advertised: peers dialing it would reach themselves.
func advertiseAddr(m machine, flag, listen, advertise string) (string, error) {
	advFlag := advertiseFlag(flag)
	if advertise != "" {
		host, _, err := net.SplitHostPort(advertise)
		if err != nil {
			return "", fmt.Errorf("--%s %q: %w", advFlag, advertise, err)
		}
		if isWildcard(host) {
			return "", fmt.Errorf("--%s %s is a wildcard address, which other nodes cannot dial: "+
				"give a host name or IP address of this machine that they can reach", advFlag, advertise)
		}
		return advertise, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--%s %q: %w", flag, listen, err)
	}
	if !isWildcard(host) {
		return listen, nil
	}
	name, why := resolvableHostname(m)
	if why != "" {
		return "", fmt.Errorf("--%s %s listens on every interface, so it does not say where other nodes reach this one, "+
			"and %s: set --%s HOST:%s to an address of this machine that the other nodes and clients can reach",
			flag, listen, why, advFlag, port)
	}
	return net.JoinHostPort(name, port), nil
}

// resolvableHostname returns the machine's hostname when it resolves to
// addresses none of which is loopback; otherwise it says why not.
func resolvableHostname(m machine) (name, whyNot string) {
	name, err := m.hostname()
	if err != nil || name == "" {
		return "", fmt.Sprintf("the hostname could not be read (%v)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := m.lookupIP(ctx, name)
	if err != nil {
		return "", fmt.Sprintf("the hostname %q does not resolve (%v)", name, err)
	}
	if len(ips) == 0 {
		return "", fmt.Sprintf("the hostname %q resolves to no address", name)
	}
	for _, ip := range ips {
		if ip.IsLoopback() || ip.IsUnspecified() {
			return "", fmt.Sprintf("the hostname %q resolves to %s, which other machines cannot dial", name, ip)
		}
	}
	return name, ""
}

// isWildcard reports whether host means "every interface" when listening:
// empty, 0.0.0.0 or :: (in any spelling).
func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// advertiseFlag names the advertise flag that goes with a listen flag.
func advertiseFlag(listenFlag string) string {
	switch listenFlag {
	case "grpc-addr":
		return "grpc-advertise"
	case "raft-addr":
		return "raft-advertise"
	}
	return listenFlag + "-advertise"
}
