package cabalsyntax

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

// DefaultGHC is the GHC version conditions are evaluated for when none is
// given and there is no ghc on PATH to ask.
const DefaultGHC = "9.6.7"

// Platform is what conditions are evaluated against.
type Platform struct {
	OS   string // cabal's name for the operating system: linux
	Arch string // cabal's name for the architecture: x86_64, aarch64
	GHC  string // the version of the GHC that builds, such as 9.6.7
}

// Host is the platform dflow deploys to: linux on this machine's
// architecture, built by GHC version ghc ("" asks HostGHC).
func Host(ghc string) Platform {
	if ghc == "" {
		ghc = HostGHC()
	}
	return Platform{OS: "linux", Arch: CabalArch(runtime.GOARCH), GHC: ghc}
}

var hostGHC = sync.OnceValue(func() string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ghc", "--numeric-version").Output()
	if v := strings.TrimSpace(string(out)); err == nil && IsVersion(v) {
		return v
	}
	return DefaultGHC
})

// HostGHC is the version of the ghc on PATH (`ghc --numeric-version`,
// asked once per process), or DefaultGHC when there is none.
func HostGHC() string { return hostGHC() }

// CabalArch maps a GOARCH to cabal's name for it.
func CabalArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i386"
	case "loong64":
		return "loongarch64"
	case "mipsle":
		return "mips"
	case "wasm":
		return "wasm32"
	}
	return goarch
}

// archAliases are the other names cabal accepts for an architecture.
var archAliases = map[string][]string{
	"i386":    {"i486", "i586", "i686"},
	"x86_64":  {"amd64"},
	"aarch64": {"arm64"},
	"arm":     {"armeb", "armel"},
	"ppc":     {"powerpc"},
	"ppc64":   {"powerpc64"},
	"ppc64le": {"powerpc64le"},
	"mips":    {"mipsel", "mipseb"},
}

func (pl Platform) isArch(name string) bool {
	name = strings.ToLower(name)
	if name == pl.Arch {
		return true
	}
	for _, a := range archAliases[pl.Arch] {
		if name == a {
			return true
		}
	}
	return false
}
