package check_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"

	"github.com/stund/stund/internal/stund/server"
	"github.com/stund/stund/pkg/check"
)

// Check a STUN server's path. This host reaches the server over
// loopback, so the server sees 127.0.0.1; the example claims a public IP
// that the path would have to preserve, and the check finds it rewritten.
func Example() {
	addr, stop := startServer() // a STUN server on a free loopback port
	defer stop()

	target, err := check.ParseTarget(addr.String())
	if err != nil {
		log.Fatal(err)
	}
	checker, err := check.New(check.Config{
		Targets: []check.Target{target},
		// Your public IP, one per family. Without it, reference STUN
		// servers on the internet are asked for it.
		ExpectIPs: []netip.Addr{netip.MustParseAddr("203.0.113.10")},
	})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := checker.Run(context.Background())
	if err != nil {
		log.Fatal(err) // the check could not start: a name that does not resolve
	}
	for _, p := range rep.Probes {
		fmt.Printf("%s: %s, %s\n", p.Transport, p.Verdict, p.Reason)
	}
	fmt.Println("overall:", rep.Verdict)
	// Output:
	// udp: rewritten, loopback-address
	// tcp: rewritten, loopback-address
	// overall: rewritten
}

// Errors say which input is wrong, so that a program can tell its user in
// its own words.
func ExampleParseTarget() {
	for _, s := range []string{"stun:stun.example.com", "[2001:db8::7]:3479", "stun.example.com:0"} {
		t, err := check.ParseTarget(s)
		var ie *check.InputError
		switch {
		case errors.Is(err, check.ErrBadTarget) && errors.As(err, &ie):
			fmt.Printf("refused %q: %v\n", ie.Input, err)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Println(t.Host, t.Port)
		}
	}
	// Output:
	// stun.example.com 3478
	// 2001:db8::7 3479
	// refused "stun.example.com:0": target "stun.example.com:0": port "0" is not a number from 1 to 65535
}

// startServer runs a STUN server on a free loopback port and returns its
// address and the function that stops it.
func startServer() (netip.AddrPort, func()) {
	srv, err := server.New(server.Config{Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		log.Fatal(err)
	}

	return srv.Addrs()[0], func() { _ = srv.Close() }
}
