package exporter

import (
	"bytes"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stund/stund/internal/golden"
	"github.com/stund/stund/pkg/check"
)

// render is the text of a probe answer.
func render(t *testing.T, o outcome) []byte {
	t.Helper()
	mfs, err := probeRegistry(o).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}

	return b.Bytes()
}

func probe(tr check.Transport, fam check.Family, v check.Verdict, r check.Reason, mapped string, rtt time.Duration) check.Probe {
	p := check.Probe{
		Target: "stun:198.51.100.7", Address: netip.MustParseAddrPort("198.51.100.7:3478"), Transport: tr, Family: fam,
		Local: netip.MustParseAddrPort("10.0.0.5:40000"), PublicIP: netip.MustParseAddr("203.0.113.10"), RTT: rtt,
	}
	p.Verdict, p.Reason, p.Detail = v, r, "The server saw "+mapped+"."
	if mapped != "" {
		p.Mapped = netip.MustParseAddrPort(mapped)
	}

	return p
}

// TestProbeMetricsGolden renders the answer for each verdict.
func TestProbeMetricsGolden(t *testing.T) {
	works, broken := &relayResult{Transport: "udp", Works: true}, &relayResult{Transport: "tcp", Works: false}
	for _, tc := range []struct {
		name    string
		probes  []check.Probe
		relay   []*relayResult
		success bool
	}{
		{"preserved", []check.Probe{
			probe(check.UDP, check.IPv4, check.Preserved, check.ReasonSameAddress, "203.0.113.10:40000", 1500*time.Microsecond),
			probe(check.TCP, check.IPv4, check.Preserved, check.ReasonPortChanged, "203.0.113.10:61000", 2*time.Millisecond),
		}, nil, true},
		{"rewritten", []check.Probe{
			probe(check.UDP, check.IPv4, check.Rewritten, check.ReasonPrivate, "10.1.0.1:40000", time.Millisecond),
			probe(check.TCP, check.IPv4, check.Preserved, check.ReasonSameAddress, "203.0.113.10:40000", time.Millisecond),
		}, nil, false},
		{"inconclusive", []check.Probe{
			probe(check.UDP, check.IPv6, check.Inconclusive, check.ReasonNoResponse, "", 0),
			probe(check.TCP, check.IPv6, check.Inconclusive, check.ReasonNoPublicIP, "[2001:db8::9]:4000", 3*time.Millisecond),
		}, nil, false},
		{"turn", []check.Probe{
			probe(check.UDP, check.IPv4, check.Preserved, check.ReasonSameAddress, "203.0.113.10:40000", time.Millisecond),
			probe(check.TCP, check.IPv4, check.Preserved, check.ReasonSameAddress, "203.0.113.10:40000", time.Millisecond),
		}, []*relayResult{works, broken}, false},
		{"no-probe", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := outcome{Results: resultsOf(&check.Report{Probes: tc.probes}), Duration: 250 * time.Millisecond}
			for i, r := range tc.relay {
				o.Results[i].Relay = r
			}
			if o.success() != tc.success {
				t.Errorf("success %v, want %v", o.success(), tc.success)
			}
			got := render(t, o)
			golden.Assert(t, tc.name+".golden.prom", got)
			checkLabels(t, got)
		})
	}
}

// checkLabels fails when a label value is not in the vocabulary or is an
// address.
func checkLabels(t *testing.T, text []byte) {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v", err)
	}
	vocabulary := slices.Concat(transports, families, verdicts, reasons, []string{other})
	for name, mf := range mfs {
		if mf.GetHelp() == "" || !bytes.Contains(text, []byte("# TYPE "+name+" gauge")) {
			t.Errorf("%s: HELP or TYPE missing", name)
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if !slices.Contains(vocabulary, v) {
					t.Errorf("%s{%s=%q}: not in the label vocabulary", name, l.GetName(), v)
				}
				if _, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil || strings.ContainsAny(v, ".:") {
					t.Errorf("%s{%s=%q}: an address in a label", name, l.GetName(), v)
				}
			}
		}
	}
}

func TestVocabularyKeepsLabelsBounded(t *testing.T) {
	rs := resultsOf(&check.Report{Probes: []check.Probe{{
		Transport: "10.0.0.1", Family: "2001:db8::1", Judgement: check.Judgement{Verdict: "198.51.100.7:3478", Reason: "seen 10.1.0.1"},
	}}})
	o := outcome{Results: rs}
	checkLabels(t, render(t, o))
}

// TestReasonsComplete reads every Reason constant of pkg/check, so that a
// reason added there is added to the label vocabulary rather than
// reported as "other".
func TestReasonsComplete(t *testing.T) {
	files, err := filepath.Glob("../../../pkg/check/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("pkg/check sources: %v", err)
	}
	found := 0
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || vs.Type == nil {
				return true
			}
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				return true
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					found++
					if !slices.Contains(reasons, s) {
						t.Errorf("check.Reason %q is not in the exporter's label vocabulary (metrics.go)", s)
					}
				}
			}

			return true
		})
	}
	if found < 10 {
		t.Fatalf("found %d Reason constants: the search is broken", found)
	}
}
