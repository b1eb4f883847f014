package check

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The JSON form is stuncheck's stable interface: field names and reason
// words never change meaning; new fields may appear.

type reportJSON struct {
	Verdict   Verdict        `json:"verdict"`
	PublicIPs []publicIPJSON `json:"public_ips"`
	Probes    []probeJSON    `json:"probes"`
	// Findings is absent when no diagnosis ran, [] when it found nothing.
	Findings *[]findingJSON `json:"findings,omitempty"`
	// HealthChecks is absent when no health check was sent.
	HealthChecks []healthCheckJSON `json:"health_checks,omitempty"`
}

type healthCheckJSON struct {
	Target              string  `json:"target"`
	Node                string  `json:"node"`
	Address             *string `json:"address"`
	Status              *int    `json:"status"`
	LocalEndpoints      *int    `json:"local_endpoints"`
	ServiceProxyHealthy *bool   `json:"service_proxy_healthy,omitempty"`
	Error               string  `json:"error,omitempty"`
}

type findingJSON struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix"`
}

type publicIPJSON struct {
	Family     Family          `json:"family"`
	IP         *string         `json:"ip"`
	Source     Source          `json:"source"`
	Detail     string          `json:"detail,omitempty"`
	References []referenceJSON `json:"references,omitempty"`
}

type referenceJSON struct {
	Server  string  `json:"server"`
	Address *string `json:"address"`
	Mapped  *string `json:"mapped"`
	Error   string  `json:"error,omitempty"`
}

type probeJSON struct {
	Target         string    `json:"target"`
	Address        string    `json:"address"`
	Transport      string    `json:"transport"`
	Family         string    `json:"family"`
	Local          *string   `json:"local"`
	Mapped         *string   `json:"mapped"`
	PublicIP       *string   `json:"public_ip"`
	Verdict        string    `json:"verdict"`
	Reason         string    `json:"reason"`
	Detail         string    `json:"detail"`
	Hint           string    `json:"hint,omitempty"`
	RTTms          *float64  `json:"rtt_ms"`
	ResponseOrigin *string   `json:"response_origin,omitempty"`
	OtherAddress   *string   `json:"other_address,omitempty"`
	Software       string    `json:"software,omitempty"`
	NAT            *natJSON  `json:"nat_behavior,omitempty"`
	TURN           *turnJSON `json:"turn,omitempty"`
}

// turnJSON is probes[].turn, present on TURN probes only. It never holds
// a password or a secret.
type turnJSON struct {
	Auth turnAuthJSON `json:"auth"`
	// Relayed is null without an allocation.
	Relayed      *turnRelayedJSON `json:"relayed"`
	Relay        turnRelayJSON    `json:"relay"`
	LifetimeS    *int64           `json:"lifetime_s"`
	Released     bool             `json:"released"`
	ReleaseError string           `json:"release_error,omitempty"`
}

type turnAuthJSON struct {
	// Status is null when the server never answered.
	Status    *AuthStatus `json:"status"`
	Mechanism string      `json:"mechanism"`
	Realm     string      `json:"realm,omitempty"`
	Code      *int        `json:"code,omitempty"`
	Error     string      `json:"error,omitempty"`
}

type turnRelayedJSON struct {
	Address string       `json:"address"`
	Class   RelayedClass `json:"class"`
	Detail  string       `json:"detail"`
}

type turnRelayJSON struct {
	Status RelayStatus `json:"status"`
	Peer   *string     `json:"peer"`
	RTTms  *float64    `json:"rtt_ms"`
	Detail string      `json:"detail"`
}

func marshalTURN(t *TURNResult) *turnJSON {
	out := &turnJSON{
		Auth:     turnAuthJSON{Mechanism: t.Auth.Mechanism, Realm: t.Auth.Realm, Error: t.Auth.Reason},
		Relay:    turnRelayJSON{Status: t.Relay.Status, Peer: addrPortPtr(t.Relay.Peer), Detail: t.Relay.Detail},
		Released: t.Released, ReleaseError: t.ReleaseError,
	}
	if t.Auth.Status != "" {
		st := t.Auth.Status
		out.Auth.Status = &st
	}
	if t.Auth.Code != 0 {
		c := t.Auth.Code
		out.Auth.Code = &c
	}
	if t.Relayed.IsValid() {
		out.Relayed = &turnRelayedJSON{Address: t.Relayed.String(), Class: t.RelayedClass, Detail: t.RelayedDetail}
		lt := int64(t.Lifetime / time.Second)
		out.LifetimeS = &lt
	}
	if t.Relay.Status == RelayWorks {
		ms := math.Round(float64(t.Relay.RTT.Microseconds())) / 1000
		out.Relay.RTTms = &ms
	}

	return out
}

type natJSON struct {
	Mapping   Behavior `json:"mapping"`
	Filtering Behavior `json:"filtering"`
	NoNAT     bool     `json:"no_nat,omitempty"`
	Detail    string   `json:"detail,omitempty"`
}

func addrPortPtr(a netip.AddrPort) *string {
	if !a.IsValid() {
		return nil
	}
	s := a.String()

	return &s
}

func addrPtr(a netip.Addr) *string {
	if !a.IsValid() {
		return nil
	}
	s := a.String()

	return &s
}

// MarshalJSON renders the report in stuncheck's documented JSON schema.
func (r *Report) MarshalJSON() ([]byte, error) {
	out := reportJSON{Verdict: r.Verdict, PublicIPs: []publicIPJSON{}, Probes: []probeJSON{}}
	for _, p := range r.PublicIPs {
		pj := publicIPJSON{Family: p.Family, IP: addrPtr(p.IP), Source: p.Source, Detail: p.Detail}
		for _, ref := range p.References {
			pj.References = append(pj.References, referenceJSON{
				Server: ref.Server, Address: addrPortPtr(ref.Address), Mapped: addrPortPtr(ref.Mapped), Error: ref.Error,
			})
		}
		out.PublicIPs = append(out.PublicIPs, pj)
	}
	for _, p := range r.Probes {
		pj := probeJSON{
			Target: p.Target, Address: p.Address.String(), Transport: string(p.Transport), Family: string(p.Family),
			Local: addrPortPtr(p.Local), Mapped: addrPortPtr(p.Mapped), PublicIP: addrPtr(p.PublicIP),
			Verdict: string(p.Verdict), Reason: string(p.Reason), Detail: p.Detail, Hint: p.Hint,
			ResponseOrigin: addrPortPtr(p.ResponseOrigin), OtherAddress: addrPortPtr(p.OtherAddress), Software: p.Software,
		}
		if p.Mapped.IsValid() {
			ms := math.Round(float64(p.RTT.Microseconds())) / 1000
			pj.RTTms = &ms
		}
		if p.TURN != nil {
			pj.TURN = marshalTURN(p.TURN)
		}
		if p.NAT != nil {
			pj.NAT = &natJSON{Mapping: p.NAT.Mapping, Filtering: p.NAT.Filtering, NoNAT: p.NAT.NoNAT, Detail: p.NAT.Detail}
		}
		out.Probes = append(out.Probes, pj)
	}
	if r.Findings != nil {
		sorted := slices.Clone(r.Findings)
		SortFindings(sorted)
		fs := make([]findingJSON, 0, len(sorted))
		for _, f := range sorted {
			fs = append(fs, findingJSON{ID: f.ID, Severity: f.Severity, Message: f.Message, Fix: f.Fix})
		}
		out.Findings = &fs
	}
	for _, h := range r.HealthChecks {
		hj := healthCheckJSON{
			Target: h.Target, Node: h.Node, Address: addrPortPtr(h.Address),
			LocalEndpoints: h.LocalEndpoints, ServiceProxyHealthy: h.ServiceProxyHealthy, Error: h.Error,
		}
		if h.Answered() {
			st := h.Status
			hj.Status = &st
		}
		out.HealthChecks = append(out.HealthChecks, hj)
	}

	return json.Marshal(out)
}

// WriteJSON writes the report as indented JSON followed by a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))

	return err
}

// TextOptions controls WriteText.
type TextOptions struct {
	// Color adds ANSI colours; set it only for a terminal without NO_COLOR.
	Color bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiDim    = "\x1b[2m"
)

// WriteText writes the report for people: the public IPs, a picture of
// each probe's path with its verdict, what was seen and what to try, then
// the overall verdict.
func (r *Report) WriteText(w io.Writer, opt TextOptions) error {
	paint := func(code, s string) string {
		if !opt.Color {
			return s
		}

		return code + s + ansiReset
	}
	var b strings.Builder
	for _, p := range r.PublicIPs {
		ip := "unknown"
		if p.IP.IsValid() {
			ip = p.IP.String()
		}
		how := p.Detail
		if p.Source == SourceExpectIP {
			how = "from --expect-ip"
		} else if p.IP.IsValid() {
			how = "from --reference: " + p.Detail
		}
		fmt.Fprintf(&b, "your public %s: %s (%s)\n", familyName(p.Family), paint(ansiBold, ip), how)
		if !p.IP.IsValid() {
			for _, ref := range p.References {
				res := ref.Error
				if ref.Mapped.IsValid() {
					res = "saw " + ref.Mapped.String()
				}
				fmt.Fprintf(&b, "  reference %s: %s\n", ref.Server, res)
			}
		}
	}
	lastHint := ""
	for _, p := range r.Probes {
		you := "?"
		if p.PublicIP.IsValid() {
			you = p.PublicIP.String()
		}
		saw := "no answer"
		if p.TURN != nil && p.TURN.Auth.Status != "" {
			saw = "no allocation"
		}
		if p.Mapped.IsValid() {
			saw = "server saw " + p.Mapped.String()
		}
		mark, colour := "✓", ansiGreen
		switch p.Verdict {
		case Rewritten, Failed:
			mark, colour = "✗", ansiRed
		case Inconclusive:
			mark, colour = "?", ansiYellow
		}
		target := p.Address.String()
		if t, err := ParseTarget(p.Target); err == nil {
			_, literal := t.IP()
			switch {
			case t.IsTURN() && literal:
				target = string(t.Scheme) + ":" + target
			case t.IsTURN():
				target = string(t.Scheme) + ":" + t.Host + " " + target
			case !literal:
				target = t.Host + " " + target
			}
		} else if p.Target != "" {
			target = p.Target + " " + target // e.g. svc/stund
		}
		fmt.Fprintf(&b, "\nyou %s ──%s──▶ %s ──▶ %s  %s\n", you, p.Transport, target, saw,
			paint(colour, fmt.Sprintf("%s %s (%s)", mark, p.Verdict, strings.ReplaceAll(string(p.Reason), "-", " "))))
		fmt.Fprintf(&b, "    %s\n", p.Detail)
		if p.Hint != "" {
			if p.Hint == lastHint {
				fmt.Fprintf(&b, "    %s\n", paint(ansiDim, "try: as above"))
			} else {
				fmt.Fprintf(&b, "    try: %s\n", p.Hint)
			}
			lastHint = p.Hint
		}
		if p.TURN != nil {
			writeTURN(&b, p.TURN)
		}
		if p.NAT != nil {
			fmt.Fprintf(&b, "    NAT behaviour (RFC 5780): mapping %s, filtering %s\n", p.NAT.Mapping, p.NAT.Filtering)
			if p.NAT.Detail != "" {
				fmt.Fprintf(&b, "    %s\n", p.NAT.Detail)
			}
		}
	}
	counts := map[Verdict]int{}
	for _, p := range r.Probes {
		counts[p.Verdict]++
	}
	noun := "probes"
	if len(r.Probes) == 1 {
		noun = "probe"
	}
	summary := fmt.Sprintf("%d %s: %d preserved, %d rewritten, %d inconclusive",
		len(r.Probes), noun, counts[Preserved], counts[Rewritten], counts[Inconclusive])
	if counts[Failed] > 0 {
		summary += fmt.Sprintf(", %d failed", counts[Failed])
	}
	colour := map[Verdict]string{Preserved: ansiGreen, Rewritten: ansiRed, Inconclusive: ansiYellow, Failed: ansiRed}[r.Verdict]
	fmt.Fprintf(&b, "\nverdict: %s (%s)\n", paint(ansiBold+colour, string(r.Verdict)), summary)
	writeFindings(&b, r.Findings, paint)
	writeHealthChecks(&b, r.HealthChecks)
	_, err := io.WriteString(w, b.String())

	return err
}

// writeTURN adds a TURN probe's three results under its detail.
func writeTURN(b *strings.Builder, t *TURNResult) {
	auth := "no answer"
	switch t.Auth.Status {
	case AuthOK, AuthStaleNonce:
		auth = strings.ReplaceAll(string(t.Auth.Status), "-", " ")
	case AuthRejected:
		auth = fmt.Sprintf("rejected: %d after credentials", t.Auth.Code)
	case AuthError:
		auth = strings.TrimSpace(fmt.Sprintf("error %d %s", t.Auth.Code, t.Auth.Reason))
	}
	if t.Auth.Realm != "" {
		auth += fmt.Sprintf(" (%s credentials, realm %q)", t.Auth.Mechanism, t.Auth.Realm)
	} else if t.Auth.Status != "" {
		auth += fmt.Sprintf(" (%s credentials)", t.Auth.Mechanism)
	}
	fmt.Fprintf(b, "    turn auth:    %s\n", auth)
	if t.Relayed.IsValid() {
		fmt.Fprintf(b, "    turn relayed: %s (%s)\n", t.Relayed, t.RelayedClass)
	}
	relay := strings.ReplaceAll(string(t.Relay.Status), "-", " ")
	if t.Relay.Status == RelayWorks {
		relay += fmt.Sprintf(", round trip %s through the relay (peer %s)", t.Relay.RTT.Round(time.Microsecond), t.Relay.Peer)
	} else if t.Auth.Status == AuthOK || t.Auth.Status == AuthStaleNonce {
		relay += ": " + t.Relay.Detail
	}
	fmt.Fprintf(b, "    turn relay:   %s\n", relay)
	if t.Relayed.IsValid() && !t.Released {
		fmt.Fprintf(b, "    turn release: failed, the allocation stays until it expires (%s): %s\n", t.Lifetime, t.ReleaseError)
	}
}

// writeFindings lists findings under the verdict, most severe first, each
// with its fix.
func writeFindings(b *strings.Builder, findings []Finding, paint func(code, s string) string) {
	if findings == nil {
		return
	}
	if len(findings) == 0 {
		b.WriteString("\nfindings: none\n")

		return
	}
	fs := slices.Clone(findings)
	SortFindings(fs)
	fmt.Fprintf(b, "\nfindings (%d):\n", len(fs))
	for _, f := range fs {
		mark, colour := "i", ansiDim
		switch f.Severity {
		case SeverityError:
			mark, colour = "✗", ansiRed
		case SeverityWarning:
			mark, colour = "!", ansiYellow
		}
		fmt.Fprintf(b, "  %s %s\n", paint(colour, fmt.Sprintf("%s %s", mark, f.Severity)), paint(ansiBold, f.ID))
		fmt.Fprintf(b, "      %s\n", f.Message)
		if f.Fix != "" {
			fmt.Fprintf(b, "      fix: %s\n", f.Fix)
		}
	}
}

// writeHealthChecks lists the nodes' health-check answers under the
// findings, one block per Service, one aligned line per node.
func writeHealthChecks(b *strings.Builder, hcs []HealthCheck) {
	for i := 0; i < len(hcs); {
		j := i
		for j < len(hcs) && hcs[j].Target == hcs[i].Target {
			j++
		}
		group := hcs[i:j]
		nameW, addrW := 0, 0
		for _, h := range group {
			nameW = max(nameW, utf8.RuneCountInString(h.Node))
			addrW = max(addrW, len(healthAddress(h)))
		}
		noun := "nodes"
		if len(group) == 1 {
			noun = "node"
		}
		fmt.Fprintf(b, "\nhealth checks of %s (%d %s):\n", hcs[i].Target, len(group), noun)
		for _, h := range group {
			fmt.Fprintf(b, "  %-*s  %-*s  %s\n", nameW, h.Node, addrW, healthAddress(h), h.Summary())
		}
		i = j
	}
}

func healthAddress(h HealthCheck) string {
	if !h.Address.IsValid() {
		return "-"
	}

	return h.Address.String()
}
