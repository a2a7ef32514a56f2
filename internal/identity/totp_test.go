package identity

import (
	"encoding/base32"
	"strings"
	"testing"
	"time"
)

func TestOTPCode(t *testing.T) {
	// RFC 6238's SHA-1 vectors, cut to 6 digits.
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	for unix, want := range map[int64]string{59: "287082", 1111111109: "081804", 1234567890: "005924", 2000000000: "279037"} {
		got, err := OTPCode(secret, OTPStep(time.Unix(unix, 0)))
		if err != nil || got != want {
			t.Errorf("code at %d = %s, %v; want %s", unix, got, err, want)
		}
	}
}

func TestCheckOTP(t *testing.T) {
	secret, err := NewOTPSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	code, _ := OTPCode(secret, OTPStep(now))
	step, ok := CheckOTP(secret, code, now.Add(20*time.Second), 0)
	if !ok || step != OTPStep(now) {
		t.Fatalf("a current code was refused")
	}
	if _, ok := CheckOTP(secret, code, now, step); ok {
		t.Error("a code was accepted twice")
	}
	if _, ok := CheckOTP(secret, code, now.Add(2*time.Minute), 0); ok {
		t.Error("a stale code was accepted")
	}
	if _, ok := CheckOTP(secret, "12345", now, 0); ok {
		t.Error("a short code was accepted")
	}
	if u := OTPURL("c", "admin", secret); !strings.HasPrefix(u, "otpauth://totp/c:admin?") || !strings.Contains(u, "secret="+secret) {
		t.Errorf("OTPURL = %s", u)
	}
}
