package stuntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TURN test credentials.
const (
	TURNRealm    = "stuncheck.test"
	TURNUser     = "alice"
	TURNPassword = "alice-password"
	TURNSecret   = "rest-shared-secret"
	// TURNServerName is the DNS name in the test certificate besides the
	// listening IP.
	TURNServerName = "turn.stuncheck.test"
)

// TURNServer is a running coturn TURN server on one loopback address:
// UDP and TCP on Port, TLS on TLSPort.
type TURNServer struct {
	IP      netip.Addr
	Port    uint16
	TLSPort uint16
	// CAFile is the PEM file of the CA that signed the server's
	// certificate (for 127.0.0.1 and TURNServerName); CA holds it too.
	CAFile string
	CA     *x509.CertPool
	log    string
}

// Addr returns the UDP/TCP listening address.
func (s *TURNServer) Addr() netip.AddrPort { return netip.AddrPortFrom(s.IP, s.Port) }

// TLSAddr returns the TLS listening address.
func (s *TURNServer) TLSAddr() netip.AddrPort { return netip.AddrPortFrom(s.IP, s.TLSPort) }

// Log returns coturn's log so far.
func (s *TURNServer) Log() string {
	b, _ := os.ReadFile(s.log)

	return string(b)
}

// TURNAuth chooses coturn's credential mechanism.
type TURNAuth int

// Credential mechanisms.
const (
	// TURNLongTerm: lt-cred-mech with the user TURNUser/TURNPassword.
	TURNLongTerm TURNAuth = iota
	// TURNREST: use-auth-secret with static-auth-secret TURNSecret.
	TURNREST
)

// StartTURN runs coturn as a TURN server on ip (a loopback address) with
// the given credential mechanism, a TLS listener with a certificate made
// for the test, and relaying to loopback peers allowed: coturn refuses
// peers on 127.0.0.0/8 by default (--allow-loopback-peers), and the
// test's peer socket lives there. Relay ports come from a small range
// (--min-port/--max-port) and the relay address is ip (--relay-ip). extra
// are more turnserver flags. It skips the test when turnserver is not
// installed.
func StartTURN(t testing.TB, ip netip.Addr, auth TURNAuth, extra ...string) *TURNServer {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("turnserver (Debian package coturn) is not installed; .ci/run installs it")
		}
		t.Skip("turnserver (Debian package coturn) is not installed")
	}
	dir := t.TempDir()
	caFile, certFile, keyFile, pool := writeTestPKI(t, dir, ip)
	var lastErr error
	for range 5 {
		port := FreePort(t, []netip.Addr{ip})
		tlsPort := FreePort(t, []netip.Addr{ip})
		relayLow := 40000 + int(port)%20000
		s := &TURNServer{IP: ip, Port: port, TLSPort: tlsPort, CAFile: caFile, CA: pool, log: filepath.Join(dir, "turnserver-"+strconv.Itoa(int(port))+".log")}
		args := []string{
			"-n", "--no-cli", "--no-dtls", "--simple-log", "--no-stdout-log", "--verbose",
			"--log-file", s.log, "--pidfile", filepath.Join(dir, "turnserver.pid"),
			"--userdb", filepath.Join(dir, "turndb"),
			"--listening-ip", ip.String(), "--relay-ip", ip.String(),
			"--listening-port", strconv.Itoa(int(port)), "--tls-listening-port", strconv.Itoa(int(tlsPort)),
			"--cert", certFile, "--pkey", keyFile,
			"--min-port", strconv.Itoa(relayLow), "--max-port", strconv.Itoa(relayLow + 50),
			"--realm", TURNRealm, "--allow-loopback-peers", "--no-tcp-relay",
		}
		switch auth {
		case TURNLongTerm:
			args = append(args, "--lt-cred-mech", "--user", TURNUser+":"+TURNPassword)
		case TURNREST:
			args = append(args, "--use-auth-secret", "--static-auth-secret", TURNSecret)
		}
		args = append(args, extra...)
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start turnserver: %v", err)
		}
		lastErr = waitReady(s.Addr(), 5*time.Second)
		if lastErr == nil {
			lastErr = waitTCP(s.TLSAddr(), 2*time.Second)
		}
		if lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				if t.Failed() {
					t.Logf("turnserver log:\n%s", s.Log())
				}
			})

			return s
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatalf("turnserver did not answer: %v", lastErr)

	return nil
}

func waitTCP(addr netip.AddrPort, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeTestPKI makes a CA and a server certificate for ip and
// TURNServerName, valid for a day, and writes them as PEM files in dir.
func writeTestPKI(t testing.TB, dir string, ip netip.Addr) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stuncheck test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: TURNServerName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{TURNServerName}, IPAddresses: []net.IP{ip.AsSlice()},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)

	return caFile, certFile, keyFile, pool
}
