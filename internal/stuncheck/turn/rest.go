package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme is defined with HMAC-SHA1
	"encoding/base64"
	"strconv"
	"time"
)

// Credentials are long-term TURN credentials (RFC 8489 §9.2).
type Credentials struct {
	Username string
	Password string
}

// RESTCredentials returns the time-limited credentials of the TURN REST
// API scheme (coturn's use-auth-secret, STUNner's ephemeral auth): the
// username is the expiry as a Unix time, followed by ":name" when name is
// not empty; the password is base64(HMAC-SHA1(secret, username)).
func RESTCredentials(secret, name string, expiry time.Time) Credentials {
	user := strconv.FormatInt(expiry.Unix(), 10)
	if name != "" {
		user += ":" + name
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(user))

	return Credentials{Username: user, Password: base64.StdEncoding.EncodeToString(mac.Sum(nil))}
}
