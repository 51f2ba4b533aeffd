package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/source"
	"github.com/scimsync/scimsync/store"
)

// field is one input of a connector form. Credentials are write-only: the
// form never shows their values, only that they are set.
type field struct {
	Name        string // the JSON key in settings or credentials
	Label       string
	Help        string
	Placeholder string
	Credential  bool
	Optional    bool
}

// Key is the field's name in the admin API's errors, e.g. settings.orgUrl.
func (f field) Key() string {
	if f.Credential {
		return "credentials." + f.Name
	}
	return "settings." + f.Name
}

// typeInfo is how the console offers a connector type.
type typeInfo struct {
	Type, Label string
	Fields      []field
}

// knownTypes gives the bundled connectors a form of their own; any other
// registered type is configured with JSON.
var knownTypes = map[string]typeInfo{
	"okta": {"okta", "Okta", []field{
		{Name: "orgUrl", Label: "Okta org URL", Placeholder: "https://example.okta.com"},
		{Name: "apiToken", Label: "API token", Help: "An Okta API token of a read-only administrator.", Credential: true},
	}},
	"jumpcloud": {"jumpcloud", "JumpCloud", []field{
		{Name: "baseUrl", Label: "API base URL", Placeholder: "https://console.jumpcloud.com", Optional: true},
		{Name: "orgId", Label: "Organization id", Help: "Only for multi-tenant (MTP) administrators.", Optional: true},
		{Name: "apiKey", Label: "API key", Credential: true},
	}},
	"entra": {"entra", "Microsoft Entra ID", []field{
		{Name: "tenantId", Label: "Tenant id", Placeholder: "00000000-0000-0000-0000-000000000000 or example.com"},
		{Name: "graphUrl", Label: "Graph URL", Placeholder: "https://graph.microsoft.com", Optional: true},
		{Name: "loginUrl", Label: "Login URL", Placeholder: "https://login.microsoftonline.com", Optional: true},
		{Name: "clientId", Label: "Application (client) id", Credential: true},
		{Name: "clientSecret", Label: "Client secret", Credential: true},
	}},
	"google": {"google", "Google Workspace", []field{
		{Name: "customerId", Label: "Customer id", Placeholder: "C01234567", Help: "Or leave empty and give the domain.", Optional: true},
		{Name: "domain", Label: "Domain", Placeholder: "example.com", Optional: true},
		{Name: "adminEmail", Label: "Admin e-mail", Help: "The administrator the service account acts as."},
		{Name: "apiUrl", Label: "Directory API URL", Placeholder: "https://admin.googleapis.com", Optional: true},
		{Name: "serviceAccountKey", Label: "Service account key", Help: "The JSON key of a service account with domain-wide delegation.", Credential: true},
	}},
}

// types lists every registered connector type, the bundled ones first.
func types() []typeInfo {
	var out []typeInfo
	for _, t := range []string{"okta", "jumpcloud", "entra", "google"} {
		if containsType(t) {
			out = append(out, knownTypes[t])
		}
	}
	for _, t := range connectors.Types() {
		if _, ok := knownTypes[t]; !ok {
			out = append(out, typeInfo{Type: t, Label: t})
		}
	}
	return out
}

func containsType(t string) bool {
	for _, x := range connectors.Types() {
		if x == t {
			return true
		}
	}
	return false
}

// connectorForm is the connector page's state.
type connectorForm struct {
	Types   []typeInfo
	Type    typeInfo
	Current *admin.ConnectorView
	// Values are the settings shown; credentials are never among them.
	Values map[string]string
	Groups string
	// JSON holds the raw settings of a type without a form of its own.
	SettingsJSON string
	// FieldErrors are keyed by field (settings.orgUrl); Error is the form's.
	FieldErrors map[string]string
	Error       string
	Success     string
}

// HasCredentials says the stored credentials are of the type shown.
func (f connectorForm) HasCredentials() bool {
	return f.Current != nil && f.Current.HasCredentials && f.Current.Type == f.Type.Type
}

func (c *Console) connectorPage(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	f := connectorForm{Types: types(), Values: map[string]string{}, FieldErrors: map[string]string{}}
	if cv, err := c.Service.Connector(ctx, org.ID); err == nil {
		f.Current = &cv
	} else if !errors.Is(err, store.ErrNotFound) {
		c.failed(w, r, err)
		return
	}
	typ := r.URL.Query().Get("type")
	if typ == "" && f.Current != nil {
		typ = f.Current.Type
	}
	if typ != "" {
		f.Type = typeOf(typ)
		if f.Current != nil && f.Current.Type == typ {
			fillSettings(&f, f.Current.Settings)
		}
	}
	c.render(w, r, http.StatusOK, "connector", view{Title: "Connector · " + org.Name, CSRF: s.CSRF, Org: &org, Tab: "connector", Data: f})
}

func typeOf(t string) typeInfo {
	if ti, ok := knownTypes[t]; ok {
		return ti
	}
	return typeInfo{Type: t, Label: t}
}

// fillSettings shows stored settings in the form.
func fillSettings(f *connectorForm, raw json.RawMessage) {
	var m map[string]any
	json.Unmarshal(raw, &m)
	if gs, ok := m["groups"].([]any); ok {
		var names []string
		for _, g := range gs {
			if s, ok := g.(string); ok {
				names = append(names, s)
			}
		}
		f.Groups = strings.Join(names, ", ")
	}
	if f.Type.Fields == nil {
		f.SettingsJSON = string(raw)
		return
	}
	for _, fl := range f.Type.Fields {
		if v, ok := m[fl.Name].(string); ok && !fl.Credential {
			f.Values[fl.Name] = v
		}
	}
}

// saveConnector tests (action=test) or saves the submitted connector.
func (c *Console) saveConnector(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	f := connectorForm{Types: types(), Type: typeOf(r.PostFormValue("type")), Values: map[string]string{}, FieldErrors: map[string]string{}}
	if cv, err := c.Service.Connector(ctx, org.ID); err == nil {
		f.Current = &cv
	} else if !errors.Is(err, store.ErrNotFound) {
		c.failed(w, r, err)
		return
	}
	settings, credentials, ok := readConnector(r, &f)
	status := http.StatusBadRequest
	if ok {
		if r.PostFormValue("action") == "test" {
			err = c.Service.TestConnector(ctx, org.ID, f.Type.Type, settings, credentials)
			if err == nil {
				f.Success = "Connection works: the IdP accepted these settings. Save to keep them."
				status = http.StatusOK
			}
		} else {
			_, err = c.Service.PutConnector(ctx, org.ID, f.Type.Type, settings, credentials)
			if err == nil {
				redirect(w, r, orgPath(org.ID), "connector")
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, source.ErrConnection):
			f.Error = "The IdP refused: " + strings.TrimPrefix(err.Error(), source.ErrConnection.Error()+": ")
		case errors.Is(err, source.ErrNoCredentials):
			f.Error = "Enter the credentials: none are stored for this type."
			for _, fl := range f.Type.Fields {
				if fl.Credential {
					f.FieldErrors[fl.Key()] = "required"
				}
			}
		case errors.Is(err, admin.ErrInvalid):
			var ce *connectors.ConfigError
			if errors.As(err, &ce) && ce.Field != "" && hasField(f.Type, ce.Field) {
				f.FieldErrors[ce.Field] = ce.Problem
			} else {
				f.Error = problem(err)
			}
		default:
			c.failed(w, r, err)
			return
		}
	}
	c.render(w, r, status, "connector", view{Title: "Connector · " + org.Name, CSRF: s.CSRF, Org: &org, Tab: "connector", Data: f})
}

func hasField(t typeInfo, key string) bool {
	for _, f := range t.Fields {
		if f.Key() == key {
			return true
		}
	}
	return false
}

// readConnector builds the settings and credentials JSON from the form;
// empty credential fields are left out, so the stored ones are kept.
func readConnector(r *http.Request, f *connectorForm) (settings, credentials json.RawMessage, ok bool) {
	var groups []string
	f.Groups = r.PostFormValue("groups")
	for _, g := range strings.Split(f.Groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			groups = append(groups, g)
		}
	}
	if f.Type.Type == "" {
		f.Error = "Choose your IdP."
		return nil, nil, false
	}
	s := map[string]any{}
	creds := map[string]any{}
	if f.Type.Fields == nil {
		f.SettingsJSON = r.PostFormValue("settings_json")
		if strings.TrimSpace(f.SettingsJSON) != "" {
			if err := json.Unmarshal([]byte(f.SettingsJSON), &s); err != nil {
				f.FieldErrors["settings"] = "must be a JSON object"
				return nil, nil, false
			}
		}
		if raw := strings.TrimSpace(r.PostFormValue("credentials_json")); raw != "" {
			if err := json.Unmarshal([]byte(raw), &creds); err != nil {
				f.FieldErrors["credentials"] = "must be a JSON object"
				return nil, nil, false
			}
		}
	}
	for _, fl := range f.Type.Fields {
		v := strings.TrimSpace(r.PostFormValue(fl.Key()))
		if fl.Credential {
			if v != "" {
				creds[fl.Name] = v
			}
			continue
		}
		f.Values[fl.Name] = v
		if v != "" {
			s[fl.Name] = v
		}
	}
	if len(groups) > 0 {
		s["groups"] = groups
	}
	settings, _ = json.Marshal(s)
	if len(creds) > 0 {
		credentials, _ = json.Marshal(creds)
	}
	return settings, credentials, true
}

func (c *Console) deleteConnectorPage(w http.ResponseWriter, r *http.Request, s session) {
	ctx := r.Context()
	org, err := c.Service.Org(ctx, r.PathValue("org"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	cv, err := c.Service.Connector(ctx, org.ID)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.ask(w, r, s, &org, "connector", question{
		Heading: "Remove the " + cv.Type + " connector?",
		Body:    "Scheduled pulls stop and its credentials are deleted. Members and groups stay as they are. To pull again, set the connector up anew.",
		Action:  orgPath(org.ID) + "/connector/delete", Button: "Remove connector", ButtonID: "confirm-delete-connector", Cancel: orgPath(org.ID) + "/connector",
	})
}

func (c *Console) deleteConnector(w http.ResponseWriter, r *http.Request, s session) {
	if err := c.Service.DeleteConnector(r.Context(), r.PathValue("org")); err != nil {
		c.failed(w, r, err)
		return
	}
	redirect(w, r, orgPath(r.PathValue("org")), "connector-deleted")
}
