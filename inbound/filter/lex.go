package filter

import (
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

type tokenKind uint8

const (
	tokEOF tokenKind = iota
	tokLParen
	tokRParen
	tokLBracket
	tokRBracket
	tokString
	tokWord // an attribute path, operator, keyword, number, true, false or null
)

type token struct {
	kind tokenKind
	text string // a word as written, or a string literal decoded
	pos  int    // offset of the token's first byte
	end  int    // offset just past the token
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of input"
	case tokLParen:
		return `"("`
	case tokRParen:
		return `")"`
	case tokLBracket:
		return `"["`
	case tokRBracket:
		return `"]"`
	case tokString:
		return "a string"
	}
	return "\"" + t.text + "\""
}

// lexer splits a filter into tokens. Words run to the next space,
// bracket, parenthesis or quote; the parser decides what a word is, so
// that URNs ("urn:…:2.0:User:name.givenName") need no special casing.
type lexer struct {
	src string
	pos int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isWordByte(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '(', ')', '[', ']', '"':
		return false
	}
	return true
}

func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start == len(l.src) {
		return token{kind: tokEOF, pos: start, end: start}, nil
	}
	kind := tokWord
	switch l.src[start] {
	case '(':
		kind = tokLParen
	case ')':
		kind = tokRParen
	case '[':
		kind = tokLBracket
	case ']':
		kind = tokRBracket
	case '"':
		s, end, err := decodeJSONString(l.src, start)
		if err != nil {
			return token{}, err
		}
		l.pos = end
		return token{kind: tokString, text: s, pos: start, end: end}, nil
	}
	if kind != tokWord {
		l.pos++
		return token{kind: kind, pos: start, end: l.pos}, nil
	}
	for l.pos < len(l.src) && isWordByte(l.src[l.pos]) {
		l.pos++
	}
	return token{kind: tokWord, text: l.src[start:l.pos], pos: start, end: l.pos}, nil
}

var errUnterminated = errors.New("unterminated string")

// decodeJSONString decodes the JSON string literal (RFC 8259 §7) that
// starts at src[start], returning it and the offset past its closing
// quote. Like encoding/json, it turns invalid UTF-8 and lone surrogates
// into U+FFFD, so that every decoded string re-encodes faithfully.
func decodeJSONString(src string, start int) (string, int, error) {
	// Fast path: no escapes and nothing to repair.
	i := start + 1
	for i < len(src) {
		c := src[i]
		if c == '"' {
			return src[start+1 : i], i + 1, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	b := make([]byte, 0, len(src)-start)
	b = append(b, src[start+1:i]...)
	for i < len(src) {
		c := src[i]
		switch {
		case c == '"':
			return string(b), i + 1, nil
		case c < 0x20:
			return "", 0, errors.New("control character in string")
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(src[i:])
			b = utf8.AppendRune(b, r) // r is U+FFFD for invalid input
			i += size
			continue
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(src) {
			return "", 0, errUnterminated
		}
		esc := src[i+1]
		i += 2
		switch esc {
		case '"', '\\', '/':
			b = append(b, esc)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(src, i)
			if !ok {
				return "", 0, errors.New(`invalid \u escape in string`)
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+6 <= len(src) && src[i] == '\\' && src[i+1] == 'u' {
					r2, ok = hex4(src, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", 0, errors.New("invalid escape in string")
		}
	}
	return "", 0, errUnterminated
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// isJSONNumber reports whether s matches the JSON number grammar
// (RFC 8259 §6), which RFC 7644 §3.4.2.2 adopts for filter values.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
