package admin

import (
	"context"
	"fmt"
	"net/http"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/store"
)

// SettleAdmin settles an organization's last admin whose change converge
// or the reconciler keeps back (see converge.Converger.SettleAdmin):
// newAdminMemberID names the member to make admin in its place, or
// confirmRemoval lets the organization be left without an admin; exactly
// one of them.
func (s *Service) SettleAdmin(ctx context.Context, orgID, memberID, newAdminMemberID string, confirmRemoval bool) (converge.Settled, error) {
	if confirmRemoval == (newAdminMemberID != "") {
		return converge.Settled{}, fmt.Errorf("%w: give either newAdminMemberId or confirmRemoval: true", ErrInvalid)
	}
	if newAdminMemberID == memberID {
		return converge.Settled{}, fmt.Errorf("%w: the new admin must be another member", ErrInvalid)
	}
	if s.Converger == nil {
		return converge.Settled{}, fmt.Errorf("settle admin: no converger")
	}
	if _, err := s.Store.Org(ctx, orgID); err != nil {
		return converge.Settled{}, err
	}
	return s.Converger.SettleAdmin(ctx, orgID, memberID, converge.Settlement{NewAdminMemberID: newAdminMemberID, ConfirmRemoval: confirmRemoval})
}

// SettledView is a settlement as the admin API shows it.
type SettledView struct {
	// Member is the kept admin after the settlement, null once removed.
	Member *store.Membership `json:"member"`
	// Applied is the change the kept admin underwent now (an audit action:
	// member.remove, member.deprovision, member.update), "" for none yet.
	Applied  string            `json:"applied"`
	NewAdmin *store.Membership `json:"newAdmin,omitempty"`
	// AwaitsReconciliation: the next reconciliation applies what the IdP's
	// listing says of the kept admin.
	AwaitsReconciliation bool `json:"awaitsReconciliation"`
}

func (a *API) settleAdmin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		NewAdminMemberID string `json:"newAdminMemberId"`
		ConfirmRemoval   bool   `json:"confirmRemoval"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	st, err := a.Service.SettleAdmin(r.Context(), r.PathValue("org"), r.PathValue("member"), body.NewAdminMemberID, body.ConfirmRemoval)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpjson.Write(w, http.StatusOK, "", SettledView{Member: st.Member, Applied: st.Applied.AuditAction(), NewAdmin: st.NewAdmin, AwaitsReconciliation: st.AwaitsReconciliation})
}
