package hostcheck

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
)

// kernelConfig is the kernel's build configuration: option → "y", "m" or a
// value; an option that is "not set" is missing from the map.
type kernelConfig map[string]string

// readKernelConfig reads /proc/config.gz (CONFIG_IKCONFIG_PROC); an error
// means the kernel does not publish its configuration.
func readKernelConfig(path string) (kernelConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer z.Close()
	return parseKernelConfig(z)
}

// parseKernelConfig reads .config syntax: "CONFIG_X=y" lines set options,
// "# CONFIG_X is not set" and other comments set nothing.
func parseKernelConfig(r io.Reader) (kernelConfig, error) {
	cfg := kernelConfig{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		opt, val, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(opt, "CONFIG_") {
			continue
		}
		cfg[opt] = strings.Trim(val, `"`)
	}
	return cfg, sc.Err()
}

// genlFamilyNames lists the generic netlink families the kernel registered.
func genlFamilyNames() ([]string, error) {
	fams, err := netlink.GenlFamilyList()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(fams))
	for _, f := range fams {
		names = append(names, f.Name)
	}
	return names, nil
}
