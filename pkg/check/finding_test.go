package check

import (
	"bytes"
	"encoding/json"
	"github.com/stund/stund/internal/golden"
	"strings"
	"testing"
)

func sampleFindings() []Finding {
	return []Finding{
		{ID: "mixed-protocol", Severity: SeverityInfo, Message: "Service lab/stund mixes UDP and TCP.", Fix: "Split it."},
		{ID: "snat-node-ip", Severity: SeverityError, Message: "stund saw 10.0.0.1, the address of node worker-1.", Fix: "Set externalTrafficPolicy: Local."},
		{ID: "endpoints-not-on-all-nodes", Severity: SeverityWarning, Message: "2 of 3 nodes have no endpoint.", Fix: "Run a DaemonSet."},
		{ID: "etp-cluster", Severity: SeverityError, Message: "externalTrafficPolicy is Cluster.", Fix: "Set it to Local."},
	}
}

func TestSortFindings(t *testing.T) {
	fs := sampleFindings()
	SortFindings(fs)
	var got []string
	for _, f := range fs {
		got = append(got, f.ID)
	}
	want := "etp-cluster snat-node-ip endpoints-not-on-all-nodes mixed-protocol"
	if strings.Join(got, " ") != want {
		t.Errorf("order %q, want %q", got, want)
	}
}

// Findings render under the verdict, most severe first, each with its fix;
// in JSON as findings[] with id, severity, message and fix.
func TestGoldenFindings(t *testing.T) {
	rep := sampleReport()
	rep.Findings = sampleFindings() // unsorted on purpose
	var txt, js bytes.Buffer
	if err := rep.WriteText(&txt, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "report.findings.golden.txt", txt.Bytes())
	out := txt.String()
	if v, e := strings.Index(out, "verdict:"), strings.Index(out, "etp-cluster"); v < 0 || e < v {
		t.Error("findings are not under the verdict")
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "report.findings.golden.json", js.Bytes())
	var doc struct {
		Findings []map[string]string `json:"findings"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Findings) != 4 || doc.Findings[0]["id"] != "etp-cluster" || doc.Findings[0]["severity"] != "error" ||
		doc.Findings[3]["severity"] != "info" || doc.Findings[1]["fix"] == "" || doc.Findings[1]["message"] == "" {
		t.Errorf("findings %v", doc.Findings)
	}

	// No diagnosis: no findings key at all; a diagnosis that found
	// nothing: an empty array and "none" in the text.
	rep.Findings = nil
	js.Reset()
	_ = rep.WriteJSON(&js)
	if strings.Contains(js.String(), `"findings"`) {
		t.Error("findings key without a diagnosis")
	}
	rep.Findings = []Finding{}
	js.Reset()
	txt.Reset()
	_ = rep.WriteJSON(&js)
	_ = rep.WriteText(&txt, TextOptions{})
	if !strings.Contains(js.String(), `"findings": []`) || !strings.Contains(txt.String(), "findings: none") {
		t.Errorf("empty diagnosis renders as\n%s\n%s", js.String(), txt.String())
	}
}
