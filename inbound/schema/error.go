package schema

import "fmt"

// ScimType is the "scimType" keyword of a SCIM error response
// (RFC 7644 §3.12).
type ScimType string

// The scimType keywords the engine packages produce.
const (
	ScimTypeInvalidFilter ScimType = "invalidFilter"
	ScimTypeInvalidPath   ScimType = "invalidPath"
	ScimTypeInvalidValue  ScimType = "invalidValue"
	ScimTypeInvalidSyntax ScimType = "invalidSyntax"
	ScimTypeMutability    ScimType = "mutability"
	ScimTypeNoTarget      ScimType = "noTarget"
)

// Error is a client error in a SCIM request. The HTTP layer renders it as
// the RFC 7644 §3.12 error body; find it with errors.As.
type Error struct {
	ScimType ScimType
	Detail   string
}

// Errorf returns an Error with a formatted detail message.
func Errorf(t ScimType, format string, args ...any) *Error {
	return &Error{ScimType: t, Detail: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	return string(e.ScimType) + ": " + e.Detail
}

// Status is the HTTP status of the error response: RFC 7644 §3.12 assigns
// 400 Bad Request to every scimType above.
func (e *Error) Status() int { return 400 }
