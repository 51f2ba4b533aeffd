package schema

import (
	"slices"
	"strings"
)

// Schema URNs (RFC 7643 §3, §4.3, §8.7).
const (
	UserURN           = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupURN          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseUserURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

	SchemaURN       = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	ResourceTypeURN = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
)

// Legacy URNs that OneLogin sends instead of the RFC 7643 ones.
const (
	LegacyCoreURN       = "urn:scim:schemas:core:2.0"
	LegacyEnterpriseURN = "urn:scim:schemas:extension:enterprise:2.0"
)

// legacyExtensionURNs maps extension URNs to their legacy spelling.
var legacyExtensionURNs = map[string]string{
	EnterpriseUserURN: LegacyEnterpriseURN,
}

// The common attributes every resource has (RFC 7643 §3.1), plus
// "schemas" (RFC 7643 §3), which filters may name
// (schemas eq "urn:…:enterprise:2.0:User").
var commonAttributes = []*Attribute{
	attr("id", TypeString, "Unique identifier for the SCIM resource as defined by the service provider.",
		caseExact, readOnly, returned(ReturnedAlways), uniqueServer),
	attr("externalId", TypeString, "Identifier for the resource as defined by the provisioning client.",
		caseExact),
	attr("meta", TypeComplex, "Resource metadata.", readOnly, subAttributes(
		attr("resourceType", TypeString, "Name of the resource type of the resource.", caseExact, readOnly),
		attr("created", TypeDateTime, "When the resource was added to the service provider.", readOnly),
		attr("lastModified", TypeDateTime, "When the resource was last updated.", readOnly),
		attr("location", TypeReference, "URI of the resource.", caseExact, readOnly, referenceTypes("uri")),
		attr("version", TypeString, "Version (ETag) of the resource.", caseExact, readOnly),
	)),
	attr("schemas", TypeReference, "URIs of the schemas the resource conforms to.",
		multiValued, required, returned(ReturnedAlways), referenceTypes("uri")),
}

// multiValuedComplex builds the usual shape of a multi-valued complex
// attribute: value, display, type and primary (RFC 7643 §2.4).
func multiValuedComplex(name, description string, value *Attribute, types ...string) *Attribute {
	return attr(name, TypeComplex, description, multiValued, subAttributes(
		value,
		attr("display", TypeString, "A human-readable name, primarily used for display purposes."),
		attr("type", TypeString, "A label indicating the attribute's function.", canonical(types...)),
		attr("primary", TypeBoolean, "Whether this is the preferred value; at most one value may be primary."),
	))
}

var userSchema = newSchema(UserURN, "User", "User Account",
	attr("userName", TypeString, "Unique identifier for the User, typically used to sign in.",
		required, uniqueServer),
	attr("name", TypeComplex, "The components of the user's real name.", subAttributes(
		attr("formatted", TypeString, "The full name, formatted for display."),
		attr("familyName", TypeString, "The family name of the User."),
		attr("givenName", TypeString, "The given name of the User."),
		attr("middleName", TypeString, "The middle name(s) of the User."),
		attr("honorificPrefix", TypeString, "The honorific prefix(es) of the User."),
		attr("honorificSuffix", TypeString, "The honorific suffix(es) of the User."),
	)),
	attr("displayName", TypeString, "The name of the User, suitable for display to end-users."),
	attr("nickName", TypeString, "The casual way to address the user in real life."),
	attr("profileUrl", TypeReference, "A fully qualified URL pointing to the User's online profile."),
	attr("title", TypeString, "The user's title, such as \"Vice President\"."),
	attr("userType", TypeString, "The relationship between the organization and the user."),
	attr("preferredLanguage", TypeString, "The User's preferred written or spoken language."),
	attr("locale", TypeString, "The User's default location for localizing currency, dates and numbers."),
	attr("timezone", TypeString, "The User's time zone in the IANA Time Zone database format."),
	attr("active", TypeBoolean, "The User's administrative status."),
	attr("password", TypeString, "The User's cleartext password; never returned.",
		writeOnly, returned(ReturnedNever)),
	multiValuedComplex("emails", "Email addresses for the user.",
		attr("value", TypeString, "Email address for the user."),
		"work", "home", "other"),
	multiValuedComplex("phoneNumbers", "Phone numbers for the User.",
		attr("value", TypeString, "Phone number of the User."),
		"work", "home", "mobile", "fax", "pager", "other"),
	multiValuedComplex("ims", "Instant messaging addresses for the User.",
		attr("value", TypeString, "Instant messaging address for the User."),
		"aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
	multiValuedComplex("photos", "URLs of photos of the User.",
		attr("value", TypeReference, "URL of a photo of the User."),
		"photo", "thumbnail"),
	attr("addresses", TypeComplex, "A physical mailing address for this User.", multiValued, subAttributes(
		attr("formatted", TypeString, "The full mailing address, formatted for display."),
		attr("streetAddress", TypeString, "The full street address component."),
		attr("locality", TypeString, "The city or locality component."),
		attr("region", TypeString, "The state or region component."),
		attr("postalCode", TypeString, "The zip code or postal code component."),
		attr("country", TypeString, "The country name component."),
		attr("type", TypeString, "A label indicating the attribute's function.", canonical("work", "home", "other")),
		attr("primary", TypeBoolean, "Whether this is the preferred mailing address."),
	)),
	attr("groups", TypeComplex, "Groups the user belongs to, directly or indirectly.",
		multiValued, readOnly, subAttributes(
			attr("value", TypeString, "The identifier of the User's group.", caseExact, readOnly),
			attr("$ref", TypeReference, "The URI of the corresponding Group resource.",
				readOnly, referenceTypes("User", "Group")),
			attr("display", TypeString, "A human-readable name of the group.", readOnly),
			attr("type", TypeString, "How the membership was derived.", readOnly, canonical("direct", "indirect")),
		)),
	multiValuedComplex("entitlements", "Entitlements for the User.",
		attr("value", TypeString, "The value of an entitlement.")),
	multiValuedComplex("roles", "Roles for the User.",
		attr("value", TypeString, "The value of a role.")),
	multiValuedComplex("x509Certificates", "DER-encoded X.509 certificates issued to the User.",
		attr("value", TypeBinary, "The value of an X.509 certificate.")),
)

var enterpriseUserSchema = newSchema(EnterpriseUserURN, "EnterpriseUser", "Enterprise User",
	attr("employeeNumber", TypeString, "Identifier assigned to the person by the organization."),
	attr("costCenter", TypeString, "Name of a cost center."),
	attr("organization", TypeString, "Name of an organization."),
	attr("division", TypeString, "Name of a division."),
	attr("department", TypeString, "Name of a department."),
	attr("manager", TypeComplex, "The User's manager.", subAttributes(
		// Manager values are User ids, which are case-exact.
		attr("value", TypeString, "The id of the SCIM resource representing the User's manager.", caseExact),
		attr("$ref", TypeReference, "The URI of the SCIM resource representing the User's manager.",
			referenceTypes("User")),
		attr("displayName", TypeString, "The displayName of the User's manager.", readOnly),
	)),
)

var groupSchema = newSchema(GroupURN, "Group", "Group",
	attr("displayName", TypeString, "A human-readable name for the Group.", required),
	attr("members", TypeComplex, "A list of members of the Group.", multiValued, subAttributes(
		// Member values are resource ids, which are case-exact.
		attr("value", TypeString, "Identifier of the member of this Group.", caseExact, immutable),
		attr("$ref", TypeReference, "The URI of the corresponding member resource.",
			immutable, referenceTypes("User", "Group")),
		attr("display", TypeString, "A human-readable name of the member.", immutable),
		attr("type", TypeString, "The type of the member.", immutable, canonical("User", "Group")),
	)),
)

var (
	userType = newResourceType("User", "/Users", "User Account", userSchema, LegacyCoreURN,
		Extension{Schema: enterpriseUserSchema})
	groupType = newResourceType("Group", "/Groups", "Group", groupSchema, LegacyCoreURN)

	resourceTypes = []*ResourceType{userType, groupType}
	schemas       = []*Schema{userSchema, enterpriseUserSchema, groupSchema}
)

// User is the User resource type, with the enterprise extension.
func User() *ResourceType { return userType }

// Group is the Group resource type.
func Group() *ResourceType { return groupType }

// ResourceTypes lists the resource types served, for /ResourceTypes.
func ResourceTypes() []*ResourceType { return slices.Clone(resourceTypes) }

// Schemas lists the schemas served, for /Schemas.
func Schemas() []*Schema { return slices.Clone(schemas) }

// LookupResourceType finds a resource type by id ("User") or endpoint
// ("/Users"), ignoring case.
func LookupResourceType(name string) (*ResourceType, bool) {
	for _, rt := range resourceTypes {
		if strings.EqualFold(name, rt.ID) || strings.EqualFold(strings.TrimPrefix(name, "/"), rt.Endpoint[1:]) {
			return rt, true
		}
	}
	return nil, false
}

// LookupSchema finds a schema by URN, ignoring case and accepting the
// legacy enterprise URN.
func LookupSchema(urn string) (*Schema, bool) {
	for _, s := range schemas {
		if strings.EqualFold(urn, s.ID) {
			return s, true
		}
		if legacy, ok := legacyExtensionURNs[s.ID]; ok && strings.EqualFold(urn, legacy) {
			return s, true
		}
	}
	return nil, false
}
