package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stund/stund/pkg/check"
)

// result is one probe of a check as the metrics see it: label values
// from the fixed vocabulary only, never an address.
type result struct {
	Transport string
	Family    string
	Verdict   check.Verdict
	Reason    check.Reason
	// RTT is zero without an answer.
	RTT time.Duration
	// Relay is the TURN relay's result for a TURN probe, nil otherwise.
	Relay *relayResult
}

// relayResult is whether a TURN allocation relayed, over which transport.
type relayResult struct {
	Transport string
	Works     bool
}

// outcome is one /probe run.
type outcome struct {
	Results  []result
	Duration time.Duration
}

// success is true when there was at least one probe and every probe is
// preserved and, for TURN, relays.
func (o outcome) success() bool {
	if len(o.Results) == 0 {
		return false
	}
	for _, r := range o.Results {
		if r.Verdict != check.Preserved || r.Relay != nil && !r.Relay.Works {
			return false
		}
	}

	return true
}

// resultsOf turns a report into results, keeping label values inside the
// vocabulary.
func resultsOf(rep *check.Report) []result {
	out := make([]result, 0, len(rep.Probes))
	for _, p := range rep.Probes {
		r := result{
			Transport: vocab(string(p.Transport), transports),
			Family:    vocab(string(p.Family), families),
			Verdict:   check.Verdict(vocab(string(p.Verdict), verdicts)),
			Reason:    check.Reason(vocab(string(p.Reason), reasons)),
			RTT:       p.RTT,
			Relay:     relayOf(p),
		}
		out = append(out, r)
	}

	return out
}

// The label vocabulary. A value outside it is reported as "other": a label
// never carries an address or free text.
var (
	transports = []string{"udp", "tcp", "tls", "dtls"}
	families   = []string{string(check.IPv4), string(check.IPv6)}
	verdicts   = []string{string(check.Preserved), string(check.Rewritten), string(check.Inconclusive), string(check.Failed)}
	reasons    = []string{
		string(check.ReasonSameAddress), string(check.ReasonPortChanged),
		string(check.ReasonPrivate), string(check.ReasonCGNAT), string(check.ReasonLinkLocal),
		string(check.ReasonLoopback), string(check.ReasonTarget), string(check.ReasonOtherPublic),
		string(check.ReasonSpecial), string(check.ReasonNoResponse), string(check.ReasonRefused),
		string(check.ReasonErrorResponse), string(check.ReasonInvalidResponse), string(check.ReasonNetworkError),
		string(check.ReasonNoPublicIP), string(check.ReasonUnsupportedFamily),
		string(check.ReasonCredentialsRejected), string(check.ReasonAllocateError), string(check.ReasonRelayedPrivate),
		string(check.ReasonRelayedUnspecified), string(check.ReasonRelayUnreachable), string(check.ReasonRelayNotTested),
		string(check.ReasonTLSCertificate), string(check.ReasonTLSHandshake),
	}
)

// other is the label value for anything outside the vocabulary.
const other = "other"

func vocab(v string, allowed []string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}

	return other
}

// probeRegistry holds the metrics of one /probe answer.
func probeRegistry(o outcome) *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	success := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "stuncheck_probe_success",
		Help: "1 when every probe of the target preserved the client's source address (and, for TURN, relayed), else 0.",
	})
	duration := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "stuncheck_probe_duration_seconds",
		Help: "How long the check took, public IP lookup included.",
	})
	verdict := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stuncheck_probe_verdict",
		Help: "1 for the verdict and reason each probe got (preserved, rewritten, inconclusive).",
	}, []string{"transport", "family", "verdict", "reason"})
	rtt := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stuncheck_probe_rtt_seconds",
		Help: "Round-trip time of the Binding request that was answered.",
	}, []string{"transport", "family"})
	preserved := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stuncheck_probe_mapped_preserved",
		Help: "1 when the address the server saw is the client's public IP, 0 when it differs; absent when there is nothing to compare.",
	}, []string{"transport", "family"})
	relay := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stuncheck_probe_relay_works",
		Help: "For a TURN target: 1 when the allocation relayed data, else 0.",
	}, []string{"transport"})
	reg.MustRegister(success, duration, verdict, rtt, preserved, relay)

	if o.success() {
		success.Set(1)
	}
	duration.Set(o.Duration.Seconds())
	for _, r := range o.Results {
		verdict.WithLabelValues(r.Transport, r.Family, string(r.Verdict), string(r.Reason)).Set(1)
		if r.RTT > 0 {
			rtt.WithLabelValues(r.Transport, r.Family).Set(r.RTT.Seconds())
		}
		switch r.Verdict {
		case check.Preserved:
			preserved.WithLabelValues(r.Transport, r.Family).Set(1)
		case check.Rewritten:
			preserved.WithLabelValues(r.Transport, r.Family).Set(0)
		}
		if r.Relay != nil {
			v := 0.0
			if r.Relay.Works {
				v = 1
			}
			relay.WithLabelValues(vocab(r.Relay.Transport, transports)).Set(v)
		}
	}

	return reg
}
