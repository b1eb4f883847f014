//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// Report is the part of stuncheck's JSON output (issue 3's contract) the lab
// asserts on.
type Report struct {
	Verdict   string `json:"verdict"`
	PublicIPs []struct {
		Family string  `json:"family"`
		IP     *string `json:"ip"`
		Source string  `json:"source"`
	} `json:"public_ips"`
	Probes []Probe `json:"probes"`
}

// Probe is one target × address × transport of a Report.
type Probe struct {
	Target    string   `json:"target"`
	Transport string   `json:"transport"`
	Family    string   `json:"family"`
	Mapped    *string  `json:"mapped"`
	Verdict   string   `json:"verdict"`
	Reason    string   `json:"reason"`
	Detail    string   `json:"detail"`
	RTTms     *float64 `json:"rtt_ms"`
}

// CheckRun is one run of stuncheck in the client namespace.
type CheckRun struct {
	Args           []string
	Exit           int
	Stdout, Stderr string
	Report         Report // parsed when the run asked for -o json
}

// Stuncheck runs stuncheck with args in the client namespace and returns
// its exit code and output; with -o json it also parses the report.
func (top *Topology) Stuncheck(t testing.TB, args ...string) CheckRun {
	t.Helper()
	return runStuncheck(t, top.Client, args...)
}

// runStuncheck runs stuncheck with args in host's namespace.
func runStuncheck(t testing.TB, host *Host, args ...string) CheckRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := host.Command(ctx, binPath(t, "stuncheck"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	run := CheckRun{Args: args}
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		run.Exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("stuncheck %s: %v", strings.Join(args, " "), err)
	}
	run.Stdout, run.Stderr = stdout.String(), stderr.String()
	t.Logf("$ stuncheck %s\nexit %d\n%s%s", strings.Join(args, " "), run.Exit, run.Stdout, run.Stderr)
	if slices.Contains(args, "json") {
		if err := json.Unmarshal(stdout.Bytes(), &run.Report); err != nil {
			t.Fatalf("stuncheck -o json printed no valid JSON: %v", err)
		}
	}
	return run
}

// expect checks the exit code and the overall verdict.
func (run CheckRun) expect(t testing.TB, exit int, verdict string) {
	t.Helper()
	if run.Exit != exit {
		t.Errorf("exit code %d, want %d", run.Exit, exit)
	}
	if run.Report.Verdict != verdict {
		t.Errorf("verdict %q, want %q", run.Report.Verdict, verdict)
	}
}

// expectProbe checks the probe for transport and family: its verdict, the
// IP the server saw (mappedIP; "" means no answer, mapped null) and, when
// reasons are given, that its reason is one of them.
func (run CheckRun) expectProbe(t testing.TB, transport string, f family, verdict, mappedIP string, reasons ...string) {
	t.Helper()
	i := slices.IndexFunc(run.Report.Probes, func(p Probe) bool { return p.Transport == transport && p.Family == f.Name })
	if i < 0 {
		t.Errorf("no %s %s probe in the report", transport, f.Name)
		return
	}
	p := run.Report.Probes[i]
	if p.Verdict != verdict {
		t.Errorf("%s %s probe: verdict %q, want %q (%s)", transport, f.Name, p.Verdict, verdict, p.Detail)
	}
	if len(reasons) > 0 && !slices.Contains(reasons, p.Reason) {
		t.Errorf("%s %s probe: reason %q, want one of %q", transport, f.Name, p.Reason, reasons)
	}
	switch {
	case mappedIP == "" && p.Mapped != nil:
		t.Errorf("%s %s probe: mapped %s, want null", transport, f.Name, *p.Mapped)
	case mappedIP != "" && p.Mapped == nil:
		t.Errorf("%s %s probe: mapped null, want %s", transport, f.Name, mappedIP)
	case mappedIP != "":
		ap, err := netip.ParseAddrPort(*p.Mapped)
		if err != nil || ap.Addr().String() != mappedIP || ap.Port() == 0 {
			t.Errorf("%s %s probe: mapped %q, want %s:<port>", transport, f.Name, *p.Mapped, mappedIP)
		}
	}
}

// expectPublicIP checks that the report took ip as the family's public IP,
// learnt from source ("expect-ip" or "reference").
func (run CheckRun) expectPublicIP(t testing.TB, f family, ip, source string) {
	t.Helper()
	for _, p := range run.Report.PublicIPs {
		if p.Family == f.Name {
			if p.IP == nil || *p.IP != ip || p.Source != source {
				t.Errorf("public IP for %s: %v from %q, want %s from %q", f.Name, deref(p.IP), p.Source, ip, source)
			}
			return
		}
	}
	t.Errorf("no public IP for %s in the report", f.Name)
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// expectIPs are the flags that give stuncheck the client's public IPs, so
// that it never asks its default (real, public) reference servers.
func expectIPs() []string {
	return []string{"--expect-ip", ipv4.Public, "--expect-ip", ipv6.Public}
}

// expectCounted checks that stund's stund_binding_requests_total grew for
// transport and family since before, with the source class of the address
// stund should have seen (sourceIP): "client" for a public address, an
// inside class (private, node, …) for an RFC 1918 / ULA one.
func (s *Stund) expectCounted(t testing.TB, before map[requestKey]float64, transport string, f family, sourceIP string) {
	t.Helper()
	after := s.BindingRequests(t)
	var total, fromClient float64
	for k, v := range after {
		if k.Transport == transport && k.Family == f.Name {
			total += v - before[k]
			if k.SourceClass == "client" {
				fromClient += v - before[k]
			}
		}
	}
	public := !netip.MustParseAddr(sourceIP).IsPrivate()
	switch {
	case total < 1:
		t.Errorf("stund_binding_requests_total{transport=%q,family=%q} did not grow", transport, f.Name)
	case public && fromClient < 1:
		t.Errorf("stund counted %v %s %s requests, none with source_class=\"client\" (source %s)", total, transport, f.Name, sourceIP)
	case !public && fromClient > 0:
		t.Errorf("stund counted %v %s %s requests with source_class=\"client\", want an inside class (source %s)", fromClient, transport, f.Name, sourceIP)
	}
}
