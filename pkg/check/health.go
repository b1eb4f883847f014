package check

import (
	"fmt"
	"net/netip"
	"strings"
)

// A HealthCheck is one node's answer to the health check a load balancer
// sends to decide which nodes get traffic: for a Kubernetes Service with
// externalTrafficPolicy Local, kube-proxy's HTTP check on the Service's
// healthCheckNodePort, which answers 200 on nodes with a ready local
// endpoint and 503 on the others.
type HealthCheck struct {
	// Target is the Service as the user wrote it, e.g. svc/stund.
	Target string
	// Node is the node's name.
	Node string
	// Address is where the check was sent; invalid when the node has no
	// address to send it to.
	Address netip.AddrPort
	// Status is the HTTP status of the answer; 0 without an answer.
	Status int
	// LocalEndpoints is how many ready endpoints of the Service the node
	// says it has; nil when the answer did not say.
	LocalEndpoints *int
	// ServiceProxyHealthy is kube-proxy's own health as the answer
	// reports it (an unhealthy kube-proxy answers 503 whatever its
	// endpoints); nil when the answer did not say.
	ServiceProxyHealthy *bool
	// Error says why there is no answer ("unreachable: i/o timeout"), or
	// what was wrong with the answer.
	Error string
}

// Answered reports whether the node answered with an HTTP status.
func (h HealthCheck) Answered() bool { return h.Status != 0 }

// Summary is the answer in a few words: "200 (1 local endpoint)", "503
// (no local endpoint)", "unreachable: i/o timeout".
func (h HealthCheck) Summary() string {
	if !h.Answered() {
		if h.Error == "" {
			return "no answer"
		}

		return h.Error
	}
	var notes []string
	switch {
	case h.LocalEndpoints == nil:
	case *h.LocalEndpoints == 0:
		notes = append(notes, "no local endpoint")
	case *h.LocalEndpoints == 1:
		notes = append(notes, "1 local endpoint")
	default:
		notes = append(notes, fmt.Sprintf("%d local endpoints", *h.LocalEndpoints))
	}
	if h.ServiceProxyHealthy != nil && !*h.ServiceProxyHealthy {
		notes = append(notes, "kube-proxy unhealthy")
	}
	if h.Error != "" {
		notes = append(notes, h.Error)
	}
	if len(notes) == 0 {
		return fmt.Sprint(h.Status)
	}

	return fmt.Sprintf("%d (%s)", h.Status, strings.Join(notes, ", "))
}
