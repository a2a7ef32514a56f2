package identity

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 6238's default, what authenticator apps use
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// One-time codes as RFC 6238 (TOTP): HMAC-SHA1, 30-second steps, 6
// digits, what every authenticator app reads from an otpauth:// URL.
const (
	totpStep   = 30 * time.Second
	totpDigits = 6
)

var otpEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewOTPSecret is a new 160-bit TOTP key, base32 as apps take it.
func NewOTPSecret() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return otpEncoding.EncodeToString(b), nil
}

// OTPURL is the otpauth:// URL of secret for user of cluster, which an
// authenticator app adds (typed in, or from a QR code of it).
func OTPURL(cluster, user, secret string) string {
	label := url.PathEscape(cluster + ":" + user)
	q := url.Values{"secret": {secret}, "issuer": {cluster}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// OTPCode is the code of secret at step (time / 30 s).
func OTPCode(secret string, step int64) (string, error) {
	key, err := otpEncoding.DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil {
		return "", fmt.Errorf("one-time code key: %w", err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", totpDigits, code%1_000_000), nil
}

// OTPStep is t's step.
func OTPStep(t time.Time) int64 { return t.Unix() / int64(totpStep/time.Second) }

// CheckOTP finds the step whose code is code, within one step of now
// (clocks drift), and later than last (a code is good once). It returns
// the step to remember, or false.
func CheckOTP(secret, code string, now time.Time, last int64) (int64, bool) {
	code = strings.TrimSpace(code)
	if secret == "" || len(code) != totpDigits {
		return 0, false
	}
	cur := OTPStep(now)
	for _, step := range []int64{cur - 1, cur, cur + 1} {
		if step <= last {
			continue
		}
		want, err := OTPCode(secret, step)
		if err == nil && Equal(want, code) {
			return step, true
		}
	}
	return 0, false
}
