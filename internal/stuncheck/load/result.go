package load

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// Latency summarises the round-trip times of the valid responses.
type Latency struct {
	Min, P50, P90, P99, P999, Max, Mean time.Duration
}

// Result is what a run measured.
type Result struct {
	// Target is the server's address.
	Target netip.AddrPort
	// Network is "udp" or "tcp".
	Network string
	// Connections is the number of UDP sockets or TCP connections.
	Connections int
	// Window is the requests in flight per connection (closed loop), or 0.
	Window int
	// Rate is the requested total rate (open loop), or 0.
	Rate float64
	// Spin is true when one thread polled all the sockets without
	// sleeping (WithSpin).
	Spin bool
	// Request is the shape of the requests.
	Request RequestShape
	// MappedCheck is the XOR-MAPPED-ADDRESS check that was applied.
	MappedCheck MappedCheck
	// Timeout is when an unanswered request counted as lost.
	Timeout time.Duration
	// Duration is how long requests were sent.
	Duration time.Duration

	// Sent counts requests handed to the kernel. Every one of them ends up
	// in exactly one of Responses, Lost, or the invalid responses that
	// answered a request (error responses and wrong or missing
	// XOR-MAPPED-ADDRESS).
	Sent uint64
	// Responses counts valid responses.
	Responses uint64
	// Lost counts requests with no response within the timeout.
	Lost uint64
	// Late counts responses to requests already answered or given up
	// (late or duplicated); they are not invalid.
	Late uint64
	// SendErrors counts requests the kernel refused to send (for example
	// after an ICMP port unreachable); they are also lost.
	SendErrors uint64
	// Invalid counts invalid responses; InvalidReasons splits them by
	// Reason.
	Invalid        uint64
	InvalidReasons [numReasons]uint64

	// ResponseRate is valid responses per second while sending; SendRate
	// is requests sent per second.
	ResponseRate, SendRate float64
	// RTT summarises the round-trip times of valid responses.
	RTT Latency
	// ClientCPU is the user and system CPU time this process used during
	// the run (the generator's own cost, to tell whether it kept up).
	ClientCPU time.Duration
	// Errors lists connections that failed during the run.
	Errors []string
}

// LossRatio is Lost / Sent.
func (r *Result) LossRatio() float64 {
	if r.Sent == 0 {
		return 0
	}

	return float64(r.Lost) / float64(r.Sent)
}

// Verdict sums a run up.
type Verdict string

// Verdicts, from worst to best.
const (
	// VerdictNoResponse: nothing came back at all.
	VerdictNoResponse Verdict = "no_response"
	// VerdictInvalid: at least one invalid response.
	VerdictInvalid Verdict = "invalid"
	// VerdictLoss: more requests lost than allowed.
	VerdictLoss Verdict = "loss"
	// VerdictOK: every response valid and the loss within bounds.
	VerdictOK Verdict = "ok"
)

// Verdict judges the run, allowing a loss ratio up to maxLoss.
func (r *Result) Verdict(maxLoss float64) Verdict {
	switch {
	case r.Responses+r.Invalid+r.Late == 0:
		return VerdictNoResponse
	case r.Invalid > 0:
		return VerdictInvalid
	case r.LossRatio() > maxLoss:
		return VerdictLoss
	}

	return VerdictOK
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type jsonResult struct {
	Target         string            `json:"target"`
	Transport      string            `json:"transport"`
	Connections    int               `json:"connections"`
	Mode           string            `json:"mode"`
	Window         int               `json:"window,omitempty"`
	Rate           float64           `json:"rate,omitempty"`
	DurationS      float64           `json:"duration_s"`
	TimeoutS       float64           `json:"timeout_s"`
	Spin           bool              `json:"spin"`
	Request        string            `json:"request"`
	MappedCheck    string            `json:"mapped_check"`
	Sent           uint64            `json:"sent"`
	Responses      uint64            `json:"responses"`
	ResponsesPerS  float64           `json:"responses_per_s"`
	SentPerS       float64           `json:"sent_per_s"`
	Lost           uint64            `json:"lost"`
	LossRatio      float64           `json:"loss_ratio"`
	Late           uint64            `json:"late"`
	SendErrors     uint64            `json:"send_errors"`
	Invalid        uint64            `json:"invalid"`
	InvalidReasons map[string]uint64 `json:"invalid_reasons"`
	RTTms          map[string]any    `json:"rtt_ms"`
	ClientCPUS     float64           `json:"client_cpu_s"`
	Errors         []string          `json:"errors"`
	MaxLoss        float64           `json:"max_loss"`
	Verdict        Verdict           `json:"verdict"`
}

// WriteJSON writes the result as one JSON object, judged with maxLoss.
func (r *Result) WriteJSON(w io.Writer, maxLoss float64) error {
	j := jsonResult{
		Target: r.Target.String(), Transport: r.Network, Connections: r.Connections,
		Mode: "closed", Window: r.Window, Rate: r.Rate,
		DurationS: r.Duration.Seconds(), TimeoutS: r.Timeout.Seconds(),
		Spin: r.Spin, Request: r.Request.String(), MappedCheck: r.MappedCheck.String(),
		Sent: r.Sent, Responses: r.Responses,
		ResponsesPerS: r.ResponseRate, SentPerS: r.SendRate,
		Lost: r.Lost, LossRatio: r.LossRatio(), Late: r.Late, SendErrors: r.SendErrors,
		Invalid: r.Invalid, InvalidReasons: map[string]uint64{},
		ClientCPUS: r.ClientCPU.Seconds(), Errors: r.Errors,
		MaxLoss: maxLoss, Verdict: r.Verdict(maxLoss),
	}
	if r.Rate > 0 {
		j.Mode = "open"
	}
	if j.Errors == nil {
		j.Errors = []string{}
	}
	for i, n := range r.InvalidReasons {
		if n > 0 {
			j.InvalidReasons[Reason(i).String()] = n
		}
	}
	if r.Responses > 0 {
		j.RTTms = map[string]any{
			"min": ms(r.RTT.Min), "p50": ms(r.RTT.P50), "p90": ms(r.RTT.P90),
			"p99": ms(r.RTT.P99), "p999": ms(r.RTT.P999), "max": ms(r.RTT.Max), "mean": ms(r.RTT.Mean),
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")

	return enc.Encode(j)
}

// WriteText writes a human summary, judged with maxLoss.
func (r *Result) WriteText(w io.Writer, maxLoss float64) error {
	var b strings.Builder
	mode := fmt.Sprintf("closed loop, window %d", r.Window)
	if r.Spin {
		mode += ", spinning"
	}
	if r.Rate > 0 {
		mode = fmt.Sprintf("open loop, %s requests/s", count(uint64(r.Rate)))
	}
	fmt.Fprintf(&b, "%s %s: %d connections, %s, %s requests (%d bytes), %s\n", r.Network, r.Target, r.Connections, mode,
		r.Request, r.Request.size(), r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "  responses  %s  (%s/s)\n", count(r.Responses), count(uint64(r.ResponseRate+0.5)))
	fmt.Fprintf(&b, "  sent       %s  (%s/s)\n", count(r.Sent), count(uint64(r.SendRate+0.5)))
	fmt.Fprintf(&b, "  lost       %s  (%.3f%%, allowed %.3g%%)\n", count(r.Lost), 100*r.LossRatio(), 100*maxLoss)
	fmt.Fprintf(&b, "  invalid    %s", count(r.Invalid))
	var reasons []string
	for i, n := range r.InvalidReasons {
		if n > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %s", Reason(i), count(n)))
		}
	}
	if len(reasons) > 0 {
		fmt.Fprintf(&b, "  (%s)", strings.Join(reasons, ", "))
	}
	fmt.Fprintf(&b, "  [mapped-address check: %s]\n", r.MappedCheck)
	if r.Late > 0 {
		fmt.Fprintf(&b, "  late       %s  (answers after the %s timeout, or duplicates)\n", count(r.Late), r.Timeout)
	}
	if r.SendErrors > 0 {
		fmt.Fprintf(&b, "  send errs  %s\n", count(r.SendErrors))
	}
	if r.Responses > 0 {
		fmt.Fprintf(&b, "  rtt        p50 %s  p99 %s  p99.9 %s  max %s\n",
			dur(r.RTT.P50), dur(r.RTT.P99), dur(r.RTT.P999), dur(r.RTT.Max))
	}
	if r.Responses > 0 && r.Duration > 0 {
		note := ""
		if r.Spin {
			note = "; spinning uses the core whatever the load"
		}
		fmt.Fprintf(&b, "  client cpu %.0f%% of one core (%.2f µs per response%s)\n",
			100*r.ClientCPU.Seconds()/r.Duration.Seconds(),
			float64(r.ClientCPU)/float64(time.Microsecond)/float64(r.Responses), note)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "  error      %s\n", e)
	}
	fmt.Fprintf(&b, "verdict: %s\n", r.Verdict(maxLoss))
	_, err := io.WriteString(w, b.String())

	return err
}

// count formats n with thousands separators.
func count(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}

	return b.String()
}

// dur formats a latency with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3gms", ms(d))
	}

	return fmt.Sprintf("%.3gs", d.Seconds())
}
