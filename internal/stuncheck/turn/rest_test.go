package turn_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v4"

	"github.com/stund/stund/internal/stuncheck/turn"
)

func TestRESTCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, secret, user string
		expiry             int64
		wantUser, wantPass string
	}{
		// Computed with: printf %s 1700000000:alice | openssl dgst -sha1 -hmac s3cret -binary | base64
		{"with name", "s3cret", "alice", 1700000000, "1700000000:alice", "TtElzSjT0GdnTQ9xdcRNxx96yQs="},
		// printf %s 1700000000 | openssl dgst -sha1 -hmac s3cret -binary | base64
		{"without name", "s3cret", "", 1700000000, "1700000000", "q+w4xPTJUDdpERozKOlEBw5B9Pg="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := turn.RESTCredentials(tc.secret, tc.user, time.Unix(tc.expiry, 0))
			if got.Username != tc.wantUser || got.Password != tc.wantPass {
				t.Errorf("RESTCredentials = %+v, want %s / %s", got, tc.wantUser, tc.wantPass)
			}
		})
	}
}

// TestRESTCredentialsAgreeWithPion checks the scheme against pion/turn's
// server-side generator, which coturn and STUNner agree with.
func TestRESTCredentialsAgreeWithPion(t *testing.T) {
	user, pass, err := pionturn.GenerateLongTermTURNRESTCredentials("another secret", "carol", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ts, name, _ := strings.Cut(user, ":")
	exp, _ := strconv.ParseInt(ts, 10, 64)
	got := turn.RESTCredentials("another secret", name, time.Unix(exp, 0))
	if got.Username != user || got.Password != pass {
		t.Errorf("RESTCredentials = %+v, pion says %s / %s", got, user, pass)
	}
}
