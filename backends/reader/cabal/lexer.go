package cabal

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// This file turns the text of a .cabal file into a tree of fields and
// sections, before any meaning is given to them. Cabal's layout rules:
//
//   - "name: value" is a field; "name args" is a section whose body is either
//     the following lines indented more than the section's line, or { ... }.
//   - A field's value goes on over the following lines that are indented more
//     than the field's line.
//   - A line whose first non-blank characters are "--" is a comment; a "--"
//     anywhere else is part of a value.
//   - Indentation is counted with a tab as one column, as cabal counts it.
//     Where that disagrees with how the file looks with 8-column tabs, the
//     file is ambiguous and rejected.
//   - Inside { } the indentation of a line matters only for fields and
//     sections that start their line; a field ends at the end of its line or
//     at ';' or '}'.

// maxNesting bounds how deeply sections nest, so hostile input cannot
// exhaust the stack.
const maxNesting = 100

// element is one field or section of a .cabal file.
type element struct {
	name    string      // lowercased field or section name
	line    int         // 1-based line of the name
	section bool        // a section rather than a field
	args    string      // section arguments: the "foo" of "executable foo", the condition of an if
	value   []valueLine // a field's value, one entry per line
	body    []element   // a section's body
}

// valueLine is one line of a field's value, trimmed.
type valueLine struct {
	text string
	line int
}

// indent is the whitespace before a position, measured as cabal counts it
// (a tab is one column) and as an editor shows it (tab stops every 8).
type indent struct {
	cabal, shown int
	line         int // 1-based line it was measured on
}

// topLevel is the indentation of the file itself: everything is deeper.
var topLevel = indent{cabal: -1, shown: -1}

func measure(prefix string, line int) indent {
	in := indent{line: line}
	for _, r := range prefix {
		if r == '\t' {
			in.shown += 8 - in.shown%8
		} else {
			in.shown++
		}
		in.cabal++
	}
	return in
}

// terminator says what ended a piece of text.
type terminator int

const (
	endOfLine  terminator = iota
	semicolon             // ';' inside braces
	closeBrace            // '}' inside braces
	openBrace             // '{' ending a section's arguments
)

// parser reads elements from the lines of one file.
type parser struct {
	file  string
	lines []string
	ln    int // current line, 0-based
	col   int // byte offset into lines[ln]
	depth int // braces open around the position
	nest  int // sections open around the position
}

// parseElements reads the fields and sections of a .cabal file.
func parseElements(file string, data []byte) ([]element, error) {
	text := strings.TrimPrefix(string(data), "\uFEFF")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	p := &parser{file: file, lines: lines}
	body, err := p.layoutBody(topLevel)
	if err != nil {
		return nil, err
	}
	if p.skip() {
		// layoutBody stops early only at a '}' with none open.
		return nil, p.errorf(p.ln+1, "unexpected '}' with no '{' open")
	}
	return body, nil
}

func (p *parser) errorf(line int, format string, args ...any) *ParseError {
	return &ParseError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.'
}

// cur is the byte at the position; callers make sure there is one.
func (p *parser) cur() byte { return p.lines[p.ln][p.col] }

func (p *parser) atEOL() bool { return p.ln >= len(p.lines) || p.col >= len(p.lines[p.ln]) }

func (p *parser) skipBlanks() {
	line := p.lines[p.ln]
	for p.col < len(line) && isBlank(line[p.col]) {
		p.col++
	}
}

// skip moves to where the next element may start, past blanks, blank lines
// and comments. It reports false at the end of the file.
func (p *parser) skip() bool {
	for p.ln < len(p.lines) {
		p.skipBlanks()
		rest := p.lines[p.ln][p.col:]
		if rest != "" && !strings.HasPrefix(rest, "--") {
			return true
		}
		p.ln++
		p.col = 0
	}
	return false
}

// nextLine moves from the end of a line to the next line holding something.
func (p *parser) nextLine() bool {
	p.ln++
	p.col = 0
	return p.skip()
}

// atLineStart reports whether only blanks precede the position on its line.
func (p *parser) atLineStart() bool {
	return strings.TrimLeft(p.lines[p.ln][:p.col], " \t") == ""
}

func (p *parser) here() indent { return measure(p.lines[p.ln][:p.col], p.ln+1) }

// deeper reports whether in is indented more than than, and rejects the
// case where the answer depends on the width of a tab.
func (p *parser) deeper(in, than indent) (bool, error) {
	byCabal := in.cabal > than.cabal
	if byCabal == (in.shown > than.shown) {
		return byCabal, nil
	}
	nested := map[bool]string{true: "nested under", false: "not nested under"}
	return false, p.errorf(in.line,
		"ambiguous indentation: tabs and spaces are mixed so that this line is %s line %d as cabal reads it (a tab is 1 column) but %s it as shown with 8-column tabs; indent with spaces only",
		nested[byCabal], than.line, nested[!byCabal])
}

// layoutBody reads the elements of a body laid out by indentation: each
// element that starts a line must be indented more than parent. It stops
// before the first line that is not, before a '}' closing an enclosing
// brace, or at the end of the file.
func (p *parser) layoutBody(parent indent) ([]element, error) {
	var body []element
	for p.skip() {
		if p.atLineStart() {
			deeper, err := p.deeper(p.here(), parent)
			if err != nil {
				return nil, err
			}
			if !deeper {
				break
			}
		}
		switch p.cur() {
		case '}':
			return body, nil
		case ';':
			if p.depth > 0 {
				p.col++
				continue
			}
		}
		e, err := p.element()
		if err != nil {
			return nil, err
		}
		body = append(body, e)
	}
	return body, nil
}

// braceBody reads the elements of a body in braces, after the '{' opened on
// line open, up to and including the matching '}'.
func (p *parser) braceBody(open int) ([]element, error) {
	p.depth++
	defer func() { p.depth-- }()
	var body []element
	for {
		if !p.skip() {
			return nil, p.errorf(open, "unterminated '{': no matching '}' before the end of the file")
		}
		switch p.cur() {
		case '}':
			p.col++
			return body, nil
		case ';':
			p.col++
			continue
		}
		e, err := p.element()
		if err != nil {
			return nil, err
		}
		body = append(body, e)
	}
}

// element reads one field or section starting at the position.
func (p *parser) element() (element, error) {
	line := p.ln + 1
	atStart := p.atLineStart()
	var at indent // measured only where it matters: on long lines it is costly
	if atStart {
		at = p.here()
	}
	start := p.col
	text := p.lines[p.ln]
	for p.col < len(text) && isNameChar(text[p.col]) {
		p.col++
	}
	if p.col == start {
		r, _ := utf8.DecodeRuneInString(text[p.col:])
		return element{}, p.errorf(line, "unexpected character %q where a field or section should start", r)
	}
	name := strings.ToLower(text[start:p.col])
	p.skipBlanks()
	if p.col < len(text) && text[p.col] == ':' {
		p.col++
		return p.field(name, line, at, atStart)
	}
	return p.section(name, line, at, atStart)
}

// text reads up to the end of the line or, inside braces, up to ';' or '}',
// or, if stopAtBrace, up to '{'. The terminator is not consumed.
func (p *parser) text(stopAtBrace bool) (string, terminator) {
	line := p.lines[p.ln]
	start := p.col
	for ; p.col < len(line); p.col++ {
		switch c := line[p.col]; {
		case p.depth > 0 && c == ';':
			return line[start:p.col], semicolon
		case p.depth > 0 && c == '}':
			return line[start:p.col], closeBrace
		case stopAtBrace && c == '{':
			return line[start:p.col], openBrace
		}
	}
	return line[start:], endOfLine
}

// field reads a field's value after the colon. at is where the field's name
// starts; atStart says whether it starts its line.
func (p *parser) field(name string, line int, at indent, atStart bool) (element, error) {
	e := element{name: name, line: line}
	p.skipBlanks()
	if p.bracedValueAhead() {
		return p.bracedValue(e)
	}
	text, term := p.text(false)
	e.value = append(e.value, valueLine{strings.TrimSpace(text), line})
	if term != endOfLine || !atStart {
		return e, nil
	}
	for {
		save, saveCol := p.ln, p.col
		if !p.nextLine() {
			return e, nil
		}
		deeper, err := p.deeper(p.here(), at)
		if err != nil {
			return element{}, err
		}
		if !deeper || p.depth > 0 && p.cur() == '}' {
			p.ln, p.col = save, saveCol
			return e, nil
		}
		if err := p.checkContinuation(e); err != nil {
			return element{}, err
		}
		text, term := p.text(false)
		e.value = append(e.value, valueLine{strings.TrimSpace(text), p.ln + 1})
		if term != endOfLine {
			return e, nil
		}
	}
}

// bracedValueAhead reports whether a value in braces starts at the
// position: a '{' that is the last thing on its line, or whose matching '}'
// ends the value. A value that merely starts with '{', such as "{-# ... #-}
// text", is not one.
func (p *parser) bracedValueAhead() bool {
	if p.atEOL() || p.cur() != '{' {
		return false
	}
	rest := p.lines[p.ln][p.col+1:]
	end := strings.IndexByte(rest, '}')
	if end < 0 {
		return strings.TrimSpace(rest) == ""
	}
	after := strings.TrimLeft(rest[end+1:], " \t")
	return after == "" || p.depth > 0 && (after[0] == ';' || after[0] == '}')
}

// bracedValue reads a value written "name: { ... }", which may span lines.
func (p *parser) bracedValue(e element) (element, error) {
	p.col++ // the '{'
	for p.ln < len(p.lines) {
		line := p.lines[p.ln]
		if end := strings.IndexByte(line[p.col:], '}'); end >= 0 {
			e.value = append(e.value, valueLine{strings.TrimSpace(line[p.col : p.col+end]), p.ln + 1})
			p.col += end + 1
			return e, nil
		}
		e.value = append(e.value, valueLine{strings.TrimSpace(line[p.col:]), p.ln + 1})
		p.ln++
		p.col = 0
	}
	return element{}, p.errorf(e.line, "unterminated '{' in the value of field %s", clip(e.name))
}

// checkContinuation rejects a continuation line of a structured field that
// reads like a field of its own: it is indented as part of the value above,
// but was most likely meant as the next field.
func (p *parser) checkContinuation(e element) error {
	if freeText[e.name] || strings.HasPrefix(e.name, "x-") {
		return nil
	}
	rest := p.lines[p.ln][p.col:]
	if word := conditional(rest); word != "" {
		return p.errorf(p.ln+1,
			"ambiguous indentation: %s is indented more than field %s on line %d, so it is read as part of that field's value; indent it like %s",
			word, e.name, e.line, e.name)
	}
	i := strings.IndexByte(rest, ':')
	if i < 0 {
		return nil
	}
	name := strings.ToLower(strings.TrimRight(rest[:i], " \t"))
	if !knownFields[name] {
		return nil
	}
	return p.errorf(p.ln+1,
		"ambiguous indentation: %s: is indented more than field %s on line %d, so it is read as part of that field's value; indent it like %s if it is a field of its own",
		name, e.name, e.line, e.name)
}

// conditional is the if, elif or else that text starts with, or "".
func conditional(text string) string {
	i := 0
	for i < len(text) && isNameChar(text[i]) {
		i++
	}
	word := strings.ToLower(text[:i])
	if word != "if" && word != "elif" && word != "else" {
		return ""
	}
	if i == len(text) || strings.IndexByte(" \t(!{", text[i]) >= 0 {
		return word
	}
	return ""
}

// section reads a section's arguments and body. at is where the section's
// name starts; atStart says whether it starts its line.
func (p *parser) section(name string, line int, at indent, atStart bool) (element, error) {
	if p.nest >= maxNesting {
		return element{}, p.errorf(line, "sections nested more than %d deep", maxNesting)
	}
	p.nest++
	defer func() { p.nest-- }()
	args, term := p.text(true)
	e := element{name: name, line: line, section: true, args: strings.TrimSpace(args)}
	var err error
	switch {
	case term == openBrace:
		p.col++
		e.body, err = p.braceBody(line)
	case term != endOfLine:
		// A ';' or '}' right after the arguments: an empty section.
	case !atStart:
		return element{}, p.errorf(line, "section %s %s does not start its line, so its body must be in { }", name, clip(e.args))
	default:
		e.body, err = p.bodyAfterHeader(at)
	}
	if err != nil {
		return element{}, err
	}
	return e, nil
}

// bodyAfterHeader reads the body of a section whose header ended its line:
// in braces if the next line starts with '{', else by indentation.
func (p *parser) bodyAfterHeader(at indent) ([]element, error) {
	save, saveCol := p.ln, p.col
	if p.nextLine() && p.cur() == '{' {
		open := p.ln + 1
		p.col++
		return p.braceBody(open)
	}
	p.ln, p.col = save, saveCol
	return p.layoutBody(at)
}
