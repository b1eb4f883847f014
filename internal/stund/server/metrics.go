package server

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// transport and family index the pre-resolved metric children, so that
// the packet path does no label lookups.
type transport uint8

const (
	transportUDP transport = iota
	transportTCP
	transportCount
)

var transportNames = [transportCount]string{"udp", "tcp"}

type family uint8

const (
	familyIPv4 family = iota
	familyIPv6
	familyCount
)

var familyNames = [familyCount]string{"ipv4", "ipv6"}

// Metrics holds the Prometheus collectors of a server. Every name starts
// with stund_.
type Metrics struct {
	bindingRequests *prometheus.CounterVec
	responses       *prometheus.CounterVec
	discarded       *prometheus.CounterVec
	bytesIn         *prometheus.CounterVec
	bytesOut        *prometheus.CounterVec
	proxyHeaders    *prometheus.CounterVec
	tcpOpen         prometheus.Gauge
	tcpTotal        prometheus.Counter
	tcpRejectedVec  *prometheus.CounterVec
	tcpRejected     [rejectCount]prometheus.Counter
	buildInfo       *prometheus.GaugeVec

	// Children resolved once, indexed by transport, family and so on.
	requests [transportCount][familyCount][classCount]prometheus.Counter
	success  [transportCount][familyCount]prometheus.Counter
	err420   [transportCount][familyCount]prometheus.Counter
	dropped  [transportCount][familyCount][reasonCount]prometheus.Counter
	proxy    [transportCount][proxyResultCount]prometheus.Counter
	in       [transportCount]prometheus.Counter
	out      [transportCount]prometheus.Counter
}

// NewMetrics creates the server's collectors and registers them with reg
// when reg is not nil. version is reported in stund_build_info.
func NewMetrics(reg prometheus.Registerer, version string) (*Metrics, error) {
	m := &Metrics{
		bindingRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stund_binding_requests_total",
			Help: "Well-formed Binding requests received, by transport, address family and class of the source address.",
		}, []string{"transport", "family", "source_class"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stund_responses_total",
			Help: "Responses sent, by transport, address family and outcome (success, error_420).",
		}, []string{"transport", "family", "outcome"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stund_discarded_total",
			Help: "Messages silently discarded, by transport, address family and reason.",
		}, []string{"transport", "family", "reason"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stund_received_bytes_total",
			Help: "STUN payload bytes received, by transport.",
		}, []string{"transport"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stund_sent_bytes_total",
			Help: "STUN payload bytes sent, by transport.",
		}, []string{"transport"}),
		proxyHeaders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stund_proxy_headers_total",
			Help: "PROXY protocol outcomes per datagram (UDP) or connection (TCP): accepted, local, untrusted, missing, malformed; the last three are refused.",
		}, []string{"transport", "result"}),
		tcpOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stund_tcp_connections_open",
			Help: "TCP connections open now.",
		}),
		tcpTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stund_tcp_connections_total",
			Help: "TCP connections accepted.",
		}),
		tcpRejectedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stund_tcp_rejected_total",
			Help: "TCP connections closed at once because a cap was reached: max_conns (all sources) or per_source.",
		}, []string{"reason"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stund_build_info",
			Help: "Always 1; the labels say which build is running.",
		}, []string{"version", "goversion"}),
	}
	m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	for r := rejectMaxConns; r < rejectCount; r++ {
		m.tcpRejected[r] = m.tcpRejectedVec.WithLabelValues(rejectNames[r])
	}
	for t := range transportCount {
		tn := transportNames[t]
		m.in[t] = m.bytesIn.WithLabelValues(tn)
		m.out[t] = m.bytesOut.WithLabelValues(tn)
		for r := proxyAccepted; r < proxyResultCount; r++ {
			m.proxy[t][r] = m.proxyHeaders.WithLabelValues(tn, proxyResultNames[r])
		}
		for f := range familyCount {
			fn := familyNames[f]
			for c := range classCount {
				m.requests[t][f][c] = m.bindingRequests.WithLabelValues(tn, fn, classNames[c])
			}
			m.success[t][f] = m.responses.WithLabelValues(tn, fn, "success")
			m.err420[t][f] = m.responses.WithLabelValues(tn, fn, "error_420")
			for r := reasonShort; r < reasonCount; r++ {
				m.dropped[t][f][r] = m.discarded.WithLabelValues(tn, fn, reasonNames[r])
			}
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{
			m.bindingRequests, m.responses, m.discarded, m.bytesIn, m.bytesOut, m.proxyHeaders,
			m.tcpOpen, m.tcpTotal, m.tcpRejectedVec, m.buildInfo,
		} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}

	return m, nil
}

// tally counts what one worker saw since its last flush, so that the
// packet path touches no shared cache lines: a batch is added to the
// Prometheus counters at once.
type tally struct {
	requests [familyCount][classCount]uint64
	success  [familyCount]uint64
	err420   [familyCount]uint64
	dropped  [familyCount][reasonCount]uint64
	proxy    [proxyResultCount]uint64
	in, out  int
}

// add records one message of n bytes and what the handler did with it.
func (t *tally) add(f family, class SourceClass, res result, n int) {
	t.in += n
	if res.binding {
		t.requests[f][class]++
	}
	switch res.outcome {
	case outcomeSuccess:
		t.success[f]++
	case outcomeError420:
		t.err420[f]++
	case outcomeDiscard:
		t.dropped[f][res.reason]++
	}
}

// flush adds t to the counters of transport tr and zeroes it.
func (m *Metrics) flush(tr transport, t *tally) {
	addCount := func(c prometheus.Counter, v *uint64) {
		if *v != 0 {
			c.Add(float64(*v))
			*v = 0
		}
	}
	for f := range familyCount {
		for c := range classCount {
			addCount(m.requests[tr][f][c], &t.requests[f][c])
		}
		addCount(m.success[tr][f], &t.success[f])
		addCount(m.err420[tr][f], &t.err420[f])
		for r := reasonShort; r < reasonCount; r++ {
			addCount(m.dropped[tr][f][r], &t.dropped[f][r])
		}
	}
	for r := proxyAccepted; r < proxyResultCount; r++ {
		addCount(m.proxy[tr][r], &t.proxy[r])
	}
	if t.in != 0 {
		m.in[tr].Add(float64(t.in))
		t.in = 0
	}
	if t.out != 0 {
		m.out[tr].Add(float64(t.out))
		t.out = 0
	}
}
