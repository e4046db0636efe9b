// Package workflow reads what the CI workflows (.github/workflows), the
// Makefile and the scripts they call would run, so that tests can hold every
// `labrun` and `make` invocation to the command tree and the Makefile's rules:
// renaming a flag then breaks a unit test here, not the nightly on GitHub.
//
// The shell reader is deliberately small: it knows words, quotes, line
// continuations, comments, command separators, redirections, here-documents,
// command substitution and the prefixes that run another command (VAR=value,
// sudo, env, exec, time, …). It is not a shell: it finds simple commands, which
// is all the checks need.
package workflow

import (
	"strings"
)

// Command is one simple command found in a script: its name (the first word
// after assignments and wrappers), its arguments with quotes removed (and
// $VARS left as written), and the 1-based line of the script it starts on.
type Command struct {
	Name string
	Args []string
	Line int
}

// Commands returns the simple commands of a shell script, in order, including
// those inside $(...) and `...`. Variables are not expanded: "$SCENARIO"
// stays $SCENARIO.
func Commands(script string) []Command {
	p := &parser{src: script, line: 1}
	p.run()
	return p.out
}

type parser struct {
	src  string
	pos  int
	line int
	base int // line offset of a nested script (command substitution)
	out  []Command

	words     []string
	wordLine  int
	heredocs  []heredoc // here-documents whose bodies start at the next newline
	skipWords int       // words still to drop: the target of a redirection
	dry       bool      // skipping text whose commands are parsed elsewhere
}

type heredoc struct {
	delim string
	strip bool // <<- strips leading tabs
}

func (p *parser) run() {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\\' && p.peek(1) == '\n':
			p.pos += 2 // a line continuation: the command goes on
			p.line++
		case c == '\n':
			p.endCommand()
			p.pos++
			p.line++
			p.readHeredocs()
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#' && p.atWordStart():
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case c == '&' && p.peek(1) == '>': // &> and &>>: both streams to a file
			p.redirect()
		case c == ';' || c == '&' || c == '|' || c == '(' || c == ')':
			p.endCommand()
			p.pos++
			if c == ';' && p.peek(0) == ';' { // ;; in case
				p.pos++
			}
		case c == '<' || c == '>':
			p.redirect()
		default:
			p.word()
		}
	}
	p.endCommand()
}

func (p *parser) peek(n int) byte {
	if p.pos+n < len(p.src) {
		return p.src[p.pos+n]
	}
	return 0
}

// atWordStart: a # starts a comment only where a word could start.
func (p *parser) atWordStart() bool {
	if p.pos == 0 {
		return true
	}
	switch p.src[p.pos-1] {
	case ' ', '\t', '\n', ';', '&', '|', '(', ')':
		return true
	}
	return false
}

// redirect reads a redirection operator; the word after it (the file) is
// not an argument. Digits right before it (2>&1) were read as a word of
// their own by word(), which stops at < and >: that word is dropped here.
func (p *parser) redirect() {
	if n := len(p.words); n > 0 && p.prevIsDigits() {
		p.words = p.words[:n-1]
	}
	start := p.pos
	for p.pos < len(p.src) && strings.IndexByte("<>&|-", p.src[p.pos]) >= 0 {
		p.pos++
	}
	op := p.src[start:p.pos]
	if strings.HasPrefix(op, "<<") && !strings.HasPrefix(op, "<<<") {
		// A here-document: its delimiter is the next word, its body the
		// lines after this one.
		for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
			p.pos++
		}
		raw := p.rawWord()
		delim := strings.NewReplacer(`'`, "", `"`, "", `\`, "").Replace(raw)
		p.heredocs = append(p.heredocs, heredoc{delim: delim, strip: strings.HasPrefix(op, "<<-")})
		return
	}
	if strings.HasSuffix(op, "&-") {
		return // >&-: closes a descriptor, no target
	}
	p.skipWords++ // the file, or the descriptor of >&2
}

// prevIsDigits reports whether the last word is a descriptor number written
// right before the operator (no space between).
func (p *parser) prevIsDigits() bool {
	if p.pos == 0 {
		return false
	}
	prev := p.src[p.pos-1]
	if prev < '0' || prev > '9' {
		return false
	}
	w := p.words[len(p.words)-1]
	for _, r := range w {
		if r < '0' || r > '9' {
			return false
		}
	}
	return w != ""
}

// readHeredocs skips the bodies of the here-documents opened on the line
// just ended.
func (p *parser) readHeredocs() {
	for _, h := range p.heredocs {
		for p.pos < len(p.src) {
			end := strings.IndexByte(p.src[p.pos:], '\n')
			var line string
			if end < 0 {
				line, p.pos = p.src[p.pos:], len(p.src)
			} else {
				line = p.src[p.pos : p.pos+end]
				p.pos += end + 1
				p.line++
			}
			if h.strip {
				line = strings.TrimLeft(line, "\t")
			}
			if line == h.delim {
				break
			}
		}
	}
	p.heredocs = nil
}

// rawWord returns the next word as written (quotes kept), advancing past it.
func (p *parser) rawWord() string {
	start := p.pos
	p.scanWord(nil)
	return p.src[start:p.pos]
}

// word reads one word, removes its quotes and adds it to the command.
func (p *parser) word() {
	line := p.line
	var b strings.Builder
	p.scanWord(&b)
	if p.skipWords > 0 {
		p.skipWords--
		return
	}
	if len(p.words) == 0 {
		p.wordLine = line
	}
	p.words = append(p.words, b.String())
}

// scanWord advances past one word, writing its unquoted text to b (if not
// nil). Command substitutions inside it are parsed as scripts of their own.
func (p *parser) scanWord(b *strings.Builder) {
	put := func(s string) {
		if b != nil {
			b.WriteString(s)
		}
	}
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';' || c == '&' || c == '|' || c == '<' || c == '>' || c == '(' || c == ')':
			return
		case c == '\\':
			if p.peek(1) == '\n' {
				p.pos += 2
				p.line++
				continue
			}
			if p.pos+1 < len(p.src) {
				put(p.src[p.pos+1 : p.pos+2])
			}
			p.pos += 2
		case c == '\'':
			end := strings.IndexByte(p.src[p.pos+1:], '\'')
			if end < 0 {
				end = len(p.src) - p.pos - 1
			}
			s := p.src[p.pos+1 : p.pos+1+end]
			put(s)
			p.line += strings.Count(s, "\n")
			p.pos += end + 2
		case c == '"':
			p.pos++
			p.scanDouble(put)
		case c == '`':
			p.pos++
			start, line := p.pos, p.line
			for p.pos < len(p.src) && p.src[p.pos] != '`' {
				if p.src[p.pos] == '\\' {
					p.pos++
				}
				if p.pos < len(p.src) && p.src[p.pos] == '\n' {
					p.line++
				}
				p.pos++
			}
			if !p.dry {
				p.nested(p.src[start:min(p.pos, len(p.src))], line)
			}
			put("`" + p.src[start:min(p.pos, len(p.src))] + "`")
			p.pos++
		case c == '$':
			p.dollar(put)
		default:
			put(string(c))
			p.pos++
		}
	}
}

// scanDouble reads a double-quoted string's body (the opening quote read).
func (p *parser) scanDouble(put func(string)) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch c {
		case '"':
			p.pos++
			return
		case '\\':
			if n := p.peek(1); n == '"' || n == '\\' || n == '$' || n == '`' {
				put(string(n))
				p.pos += 2
				continue
			}
			if p.peek(1) == '\n' {
				p.pos += 2
				p.line++
				continue
			}
			put(`\`)
			p.pos++
		case '$':
			p.dollar(put)
		case '\n':
			put("\n")
			p.line++
			p.pos++
		default:
			put(string(c))
			p.pos++
		}
	}
}

// dollar reads $NAME, ${...}, $(...) or $((...)), kept as written; the
// script of a command substitution is parsed for its commands.
func (p *parser) dollar(put func(string)) {
	start := p.pos
	switch p.peek(1) {
	case '(':
		arith := p.peek(2) == '('
		p.pos += 2
		inner, line := p.pos, p.line
		p.skipBalanced('(', ')')
		body := p.src[inner:max(inner, p.pos-1)]
		if !arith && !p.dry {
			p.nested(body, line)
		}
	case '{':
		p.pos += 2
		p.skipBalanced('{', '}')
	default:
		p.pos++
		for p.pos < len(p.src) && isNameByte(p.src[p.pos], p.pos == start+1) {
			p.pos++
			if p.pos == start+2 && strings.IndexByte("@*#?$!-0123456789", p.src[p.pos-1]) >= 0 {
				break // a special parameter is one character
			}
		}
	}
	put(p.src[start:p.pos])
}

func isNameByte(c byte, first bool) bool {
	if first && strings.IndexByte("@*#?$!-", c) >= 0 {
		return true
	}
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// skipBalanced advances past the closing byte matching an opening one
// already read, minding quotes and nesting.
func (p *parser) skipBalanced(open, close byte) {
	depth := 1
	for p.pos < len(p.src) && depth > 0 {
		c := p.src[p.pos]
		switch c {
		case open:
			depth++
		case close:
			depth--
		case '\'':
			if end := strings.IndexByte(p.src[p.pos+1:], '\''); end >= 0 {
				p.line += strings.Count(p.src[p.pos+1:p.pos+1+end], "\n")
				p.pos += end + 1
			}
		case '"':
			p.pos++
			dry := p.dry
			p.dry = true // the substitution's own parse finds what is inside
			p.scanDouble(func(string) {})
			p.dry = dry
			continue
		case '\\':
			p.pos++
		case '\n':
			p.line++
		}
		p.pos++
	}
}

// nested parses the script of a command substitution that starts on line.
func (p *parser) nested(script string, line int) {
	q := &parser{src: script, line: 1, base: line - 1}
	q.run()
	p.out = append(p.out, q.out...)
}

// words that open or close a compound command, after which a command starts.
var keywords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "do": true, "done": true,
	"while": true, "until": true, "{": true, "}": true, "!": true, "esac": true,
}

// wrappers run the command that follows their options; the value is the set
// of their options that take a value of their own (as a separate word).
var wrappers = map[string]map[string]bool{
	"sudo":    {"-u": true, "-g": true, "-C": true, "-D": true, "-h": true, "-p": true, "-U": true, "-T": true, "-r": true, "-t": true, "--user": true, "--group": true},
	"env":     {"-u": true, "-C": true, "--unset": true, "--chdir": true},
	"nice":    {"-n": true, "--adjustment": true},
	"timeout": {"-s": true, "-k": true, "--signal": true, "--kill-after": true},
	"exec":    {"-a": true},
	"time":    {"-f": true, "-o": true},
	"command": {}, "nohup": {}, "builtin": {}, "setsid": {},
}

func (p *parser) endCommand() {
	words := p.words
	p.words, p.skipWords = nil, 0
	if len(words) == 0 {
		return
	}
	words = stripPrefixes(words)
	if len(words) == 0 {
		return
	}
	p.out = append(p.out, Command{Name: words[0], Args: words[1:], Line: p.wordLine + p.base})
}

// stripPrefixes drops keywords, VAR=value assignments and wrappers with
// their options, leaving the command they run.
func stripPrefixes(words []string) []string {
	for len(words) > 0 {
		w := words[0]
		switch {
		case keywords[w]:
			words = words[1:]
		case w == "for" || w == "case" || w == "select":
			return nil // their words are not a command; the body's commands follow a separator
		case isAssignment(w):
			words = words[1:]
		case wrappers[w] != nil:
			valued := wrappers[w]
			words = words[1:]
			for len(words) > 0 && strings.HasPrefix(words[0], "-") {
				f := words[0]
				words = words[1:]
				if f == "--" {
					break
				}
				if valued[f] && len(words) > 0 {
					words = words[1:]
				}
			}
			if w == "timeout" && len(words) > 0 {
				words = words[1:] // the duration
			}
		default:
			return words
		}
	}
	return words
}

// isAssignment: NAME=value before a command.
func isAssignment(w string) bool {
	name, _, ok := strings.Cut(w, "=")
	if !ok || name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isNameByte(name[i], false) || (i == 0 && name[i] >= '0' && name[i] <= '9') {
			return false
		}
	}
	return true
}
