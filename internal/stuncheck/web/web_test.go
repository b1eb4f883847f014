package web

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// embeddedTexts returns the JSON the page carries.
func embeddedTexts(t *testing.T, page []byte) Texts {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script id="texts" type="application/json">(.*?)</script>`).FindSubmatch(page)
	if m == nil {
		t.Fatal("the page has no texts element")
	}
	var got Texts
	if err := json.Unmarshal(m[1], &got); err != nil {
		t.Fatalf("the page's texts: %v", err)
	}
	return got
}

func TestPageTextsAreTheCLIs(t *testing.T) {
	page, err := Page()
	if err != nil {
		t.Fatal(err)
	}
	got := embeddedTexts(t, page)
	if want := CurrentTexts(); !reflect.DeepEqual(got, want) {
		t.Errorf("the page's texts differ from pkg/check's:\n got %+v\nwant %+v", got, want)
	}
	for _, r := range []string{"same-address", "port-changed", "private-address", "target-address", "no-public-ip", "credentials-rejected", "relayed-private-address"} {
		if !strings.Contains(string(page), `"`+r+`"`) {
			t.Errorf("the page lacks the reason %s", r)
		}
	}
	if strings.Contains(string(page), placeholder) {
		t.Error("the placeholder is still in the page")
	}
}

// TestPageSelfContained: nothing in the page loads or names a resource
// elsewhere; the only servers it contacts are the ones in its URL.
func TestPageSelfContained(t *testing.T) {
	page, err := Page()
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ToLower(string(page))
	for _, bad := range []string{"http://", "https://", "//fonts", " src=", "<link", "@import", "fetch(", "xmlhttprequest", "sendbeacon", "websocket", "url("} {
		if strings.Contains(s, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	for _, want := range []string{`id="verdict"`, "data-verdict", "data-mapped", "stuncheck verdict: ", `name="viewport"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
