package join

import (
	"errors"
	"net"
	"strconv"

	"github.com/opengravity/gravity/internal/clusterapi"
	"github.com/opengravity/gravity/internal/pki"
)

// AdminAPI is a client of this master's cluster service as the master's
// admin certificate: what `gravity users`, `gravity resource` and
// `gravity audit` act with (audited under that name). A worker has no
// such certificate.
func AdminAPI(stateDir string) (*clusterapi.Client, error) {
	n, err := localNode(stateDir)
	if err != nil {
		return nil, err
	}
	if !n.IsMaster() {
		return nil, errors.New("this node is a worker: it holds no admin credential of the cluster API; run this on a master")
	}
	tlsCfg, err := clientTLS(n, pki.Admin)
	if err != nil {
		return nil, err
	}
	return clusterapi.NewClient(net.JoinHostPort(n.IP.String(), strconv.Itoa(clusterapi.Port)), tlsCfg), nil
}
