package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func signedAt(t *testing.T, s ssh.Signer, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", "http://node-a:7000/v1/status", nil)
	require.NoError(t, err)
	require.NoError(t, Sign(req, s, "node-a", EmptySHA256, at))
	return req
}

// replayVerifier is a Verifier for node-a with a one-minute window that
// keeps up to maxNonces nonces, reading clock (at t0 to begin with), and
// the signer of the one key it trusts.
func replayVerifier(t *testing.T, maxNonces int) (v *Verifier, s ssh.Signer, clock *fakeClock, t0 time.Time) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s, err = ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	t0 = time.Unix(1_700_000_000, 0)
	clock = &fakeClock{t: t0}
	v = NewVerifier([]ssh.PublicKey{s.PublicKey()}, VerifierOptions{Node: "node-a", Window: time.Minute, Now: clock.Now, MaxNonces: maxNonces})
	return v, s, clock, t0
}

func (v *Verifier) cacheLen() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.seen) != len(v.order) {
		panic("replay cache map and heap disagree")
	}
	return len(v.seen)
}

func TestReplayCacheBounds(t *testing.T) {
	v, s, clock, t0 := replayVerifier(t, 3)
	check := func(req *http.Request, want error) {
		t.Helper()
		err := v.Verify(req, EmptySHA256)
		if want == nil {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, want)
		}
	}

	r1, r2, r3 := signedAt(t, s, t0.Add(1*time.Second)), signedAt(t, s, t0.Add(2*time.Second)), signedAt(t, s, t0.Add(3*time.Second))
	check(r1, nil)
	check(r2, nil)
	check(r3, nil)
	require.Equal(t, 3, v.cacheLen())

	// Full: a request older than everything cached is refused and changes
	// nothing.
	check(signedAt(t, s, t0), ErrExpired)
	require.Equal(t, 3, v.cacheLen())

	// Full: a newer request pushes out the oldest; its ts becomes the floor.
	r4 := signedAt(t, s, t0.Add(4*time.Second))
	check(r4, nil)
	require.Equal(t, 3, v.cacheLen())
	check(r1, ErrExpired)                                  // forgotten, but still refused
	check(signedAt(t, s, t0.Add(time.Second)), ErrExpired) // same ts, new nonce
	check(r2, ErrReplayed)
	check(r4, ErrReplayed)

	// Entries leave as their ts leaves the window.
	clock.Set(t0.Add(time.Minute + 3500*time.Millisecond)) // r2, r3 out; r4 in
	r5 := signedAt(t, s, clock.Now())
	check(r5, nil)
	require.Equal(t, 2, v.cacheLen())
	check(r4, ErrReplayed)

	// The clock steps back: what was forgotten stays refused.
	clock.Set(t0.Add(5 * time.Second))
	check(r3, ErrExpired)
	check(r2, ErrExpired)
	check(signedAt(t, s, t0.Add(6*time.Second)), nil)

	// Much later everything is gone.
	clock.Set(t0.Add(time.Hour))
	check(signedAt(t, s, clock.Now()), nil)
	require.Equal(t, 1, v.cacheLen())
}

func TestReplayCacheMemoryStaysBounded(t *testing.T) {
	v, s, clock, t0 := replayVerifier(t, 50)
	for i := range 1000 {
		clock.Set(t0.Add(time.Duration(i) * 100 * time.Millisecond))
		req := signedAt(t, s, clock.Now())
		require.NoError(t, v.Verify(req, EmptySHA256))
		require.LessOrEqual(t, v.cacheLen(), 50)
		require.True(t, errors.Is(v.Verify(req, EmptySHA256), ErrReplayed))
	}
}

func TestSaturatingArithmetic(t *testing.T) {
	const maxI, minI = int64(^uint64(0) >> 1), -int64(^uint64(0)>>1) - 1
	require.Equal(t, maxI, addSat(maxI-1, 10))
	require.Equal(t, minI, subSat(minI+1, 10))
	require.Equal(t, int64(5), addSat(2, 3))
	require.Equal(t, int64(-1), subSat(2, 3))
}
