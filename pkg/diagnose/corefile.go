package diagnose

import (
	"fmt"
	"slices"
	"strings"
)

// Corefile is what a CoreDNS (or node-cache) Corefile says about the race
// and its mitigations.
type Corefile struct {
	Servers []CoreServer `json:"servers"`
	// Imports are the import directives outside any server block (AKS's
	// "import custom/*.server").
	Imports []string `json:"imports,omitempty"`
	// Problems are lines that did not parse; what parsed is still used.
	Problems []string `json:"problems,omitempty"`
}

// CoreServer is one server block.
type CoreServer struct {
	Zones []string `json:"zones"` // its keys: ".:53", "cluster.local:53"
	// Autopath is the autopath plugin's arguments ("@kubernetes"), or "".
	Autopath string `json:"autopath,omitempty"`
	// PodsMode is the kubernetes plugin's pods setting: autopath needs
	// "verified", which makes CoreDNS watch every pod (its memory cost).
	PodsMode string    `json:"podsMode,omitempty"`
	Cache    bool      `json:"cache"`
	CacheTTL string    `json:"cacheTTL,omitempty"`
	Forward  []Forward `json:"forward,omitempty"`
	Bind     []string  `json:"bind,omitempty"`
	// Imports are the block's import directives (AKS's
	// "import custom/*.override").
	Imports []string `json:"imports,omitempty"`
	// From names where the block came from when not from the Corefile
	// itself (an imported ConfigMap key).
	From string `json:"from,omitempty"`
}

// Forward is one forward plugin: what it forwards, to where, over what.
type Forward struct {
	From      string   `json:"from"`
	To        []string `json:"to"`
	ForceTCP  bool     `json:"forceTCP,omitempty"`
	PreferUDP bool     `json:"preferUDP,omitempty"`
}

// directive is a line of a Corefile and the block it opens.
type directive struct {
	words []string
	line  int
	block []directive
}

// ParseCorefile reads the server blocks of a Corefile. It knows the syntax
// the Corefiles in the wild use: server keys before "{", one directive per
// line, a directive's own block, "#" comments; import and snippets are
// kept as directives and not followed.
func ParseCorefile(text string) Corefile {
	var c Corefile
	top, problems := parseBlocks(text)
	c.Problems = problems
	for _, d := range top {
		if d.block == nil {
			if len(d.words) > 1 && d.words[0] == "import" {
				c.Imports = append(c.Imports, d.words[1:]...)
				continue
			}
			if len(d.words) > 0 {
				c.Problems = append(c.Problems, fmt.Sprintf("line %d: %q outside a server block", d.line, strings.Join(d.words, " ")))
			}
			continue
		}
		if len(d.words) > 0 && strings.HasPrefix(d.words[0], "(") {
			continue // a snippet
		}
		c.Servers = append(c.Servers, serverFacts(d))
	}
	return c
}

func serverFacts(d directive) CoreServer {
	s := CoreServer{Zones: d.words}
	for _, p := range d.block {
		if len(p.words) == 0 {
			continue
		}
		args := p.words[1:]
		switch p.words[0] {
		case "autopath":
			s.Autopath = strings.Join(args, " ")
			if s.Autopath == "" {
				s.Autopath = "(no arguments)"
			}
		case "cache":
			s.Cache = true
			if len(args) > 0 {
				s.CacheTTL = args[0]
			}
		case "bind":
			s.Bind = append(s.Bind, args...)
		case "import":
			s.Imports = append(s.Imports, args...)
		case "forward":
			f := Forward{}
			if len(args) > 0 {
				f.From, f.To = args[0], args[1:]
			}
			for _, o := range p.block {
				switch {
				case slices.Equal(o.words, []string{"force_tcp"}):
					f.ForceTCP = true
				case slices.Equal(o.words, []string{"prefer_udp"}):
					f.PreferUDP = true
				}
			}
			s.Forward = append(s.Forward, f)
		case "kubernetes":
			for _, o := range p.block {
				if len(o.words) == 2 && o.words[0] == "pods" {
					s.PodsMode = o.words[1]
				}
			}
		}
	}
	return s
}

// parseBlocks splits text into directives, nesting the blocks braces open.
func parseBlocks(text string) ([]directive, []string) {
	var problems []string
	type frame struct {
		d    *directive
		list []directive
	}
	stack := []frame{{}}
	for i, line := range strings.Split(text, "\n") {
		if h := strings.IndexByte(line, '#'); h >= 0 {
			line = line[:h]
		}
		line = strings.ReplaceAll(strings.ReplaceAll(line, "{", " { "), "}", " } ")
		var words []string
		flush := func(open bool) {
			if len(words) == 0 && !open {
				return
			}
			d := directive{words: words, line: i + 1}
			words = nil
			if open {
				stack = append(stack, frame{d: &d})
				return
			}
			top := &stack[len(stack)-1]
			top.list = append(top.list, d)
		}
		for _, w := range strings.Fields(line) {
			switch w {
			case "{":
				flush(true)
			case "}":
				flush(false)
				if len(stack) == 1 {
					problems = append(problems, fmt.Sprintf("line %d: } closes nothing", i+1))
					continue
				}
				f := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				f.d.block = f.list
				if f.d.block == nil {
					f.d.block = []directive{} // an empty block is still a block
				}
				parent := &stack[len(stack)-1]
				parent.list = append(parent.list, *f.d)
			default:
				words = append(words, strings.Trim(w, `"`))
			}
		}
		flush(false)
	}
	for len(stack) > 1 {
		f := stack[len(stack)-1]
		problems = append(problems, fmt.Sprintf("line %d: block of %q never closed", f.d.line, strings.Join(f.d.words, " ")))
		stack = stack[:len(stack)-1]
	}
	return stack[0].list, problems
}

// Autopath is the first server block with autopath, or nil.
func (c Corefile) Autopath() *CoreServer {
	for i := range c.Servers {
		if c.Servers[i].Autopath != "" {
			return &c.Servers[i]
		}
	}
	return nil
}

// ForceTCP lists the forward targets reached over TCP only.
func (c Corefile) ForceTCP() []string {
	var out []string
	for _, s := range c.Servers {
		for _, f := range s.Forward {
			if f.ForceTCP {
				out = append(out, f.To...)
			}
		}
	}
	return out
}

// Summary is one line per server block for the text output.
func (s CoreServer) Summary() string {
	parts := []string{strings.Join(s.Zones, " ")}
	if s.Autopath != "" {
		parts = append(parts, "autopath "+s.Autopath)
	}
	if s.PodsMode != "" {
		parts = append(parts, "pods "+s.PodsMode)
	}
	if s.Cache {
		parts = append(parts, strings.TrimSpace("cache "+s.CacheTTL))
	} else {
		parts = append(parts, "no cache")
	}
	for _, f := range s.Forward {
		p := fmt.Sprintf("forward %s → %s", f.From, strings.Join(f.To, " "))
		if f.ForceTCP {
			p += " (force_tcp)"
		}
		parts = append(parts, p)
	}
	if len(s.Bind) > 0 {
		parts = append(parts, "bind "+strings.Join(s.Bind, " "))
	}
	return strings.Join(parts, "; ")
}
