// Package web generates stuncheck's check page: one self-contained HTML
// file that has the browser gather ICE candidates with the servers named
// in its query string and judges them with stuncheck's verdict rules. The
// exporter serves it at /check; stuncheck web writes it to a file.
package web

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/stund/stund/pkg/check"
)

//go:embed page.html
var pageTemplate []byte

// placeholder is where Page puts the texts, inside a JSON script element.
const placeholder = "__STUNCHECK_TEXTS__"

// Texts is the wording the page uses, as embedded in it.
type Texts struct {
	Reasons map[check.Reason]check.ReasonText `json:"reasons"`
	Classes map[string]string                 `json:"classes"`
	Ranges  []check.AddressRange              `json:"ranges"`
}

// CurrentTexts returns the texts and address blocks of this build's
// verdict rules.
func CurrentTexts() Texts {
	return Texts{Reasons: check.ReasonTexts(), Classes: check.ClassTexts(), Ranges: check.AddressRanges()}
}

// Page returns the page with the verdict wording of pkg/check embedded.
// It loads nothing from anywhere: no scripts, styles or fonts of others.
func Page() ([]byte, error) {
	b, err := json.Marshal(CurrentTexts()) // escapes <, > and &: safe inside <script>
	if err != nil {
		return nil, fmt.Errorf("encode the page's texts: %w", err)
	}

	return bytes.Replace(pageTemplate, []byte(placeholder), b, 1), nil
}
