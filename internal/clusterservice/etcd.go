package clusterservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// EtcdResponse is the membership a joining master starts its etcd with.
type EtcdResponse struct {
	// Members are the masters' addresses, the joining one included.
	Members  []string `json:"members"`
	Promoted bool     `json:"promoted"`
}

// etcd connects to the cluster's etcd through this master's member, as
// the API server does (its etcd client certificate).
func (s *Service) etcd(ctx context.Context) (*clientv3.Client, error) {
	return EtcdClient(ctx, s.cfg.Self)
}

// EtcdClient reaches the etcd member of master self with the API server's
// etcd client certificate.
func EtcdClient(ctx context.Context, self config.Node) (*clientv3.Client, error) {
	p := self.Paths()
	cfg, err := pki.ClientTLS(p.Cert(pki.APIServerEtcdClient), p.Key(pki.APIServerEtcdClient), p.Cert(pki.EtcdCAName))
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return clientv3.New(clientv3.Config{Context: ctx, DialTimeout: 10 * time.Second,
		Endpoints: []string{"https://" + net.JoinHostPort(self.IP.String(), fmt.Sprint(config.EtcdClientPort))},
		TLS:       cfg})
}

func peerURL(ip string) string {
	return "https://" + net.JoinHostPort(ip, fmt.Sprint(config.EtcdPeerPort))
}

// memberIP is a member's address, from its peer URL.
func memberIP(urls []string) string {
	for _, u := range urls {
		if pu, err := url.Parse(u); err == nil {
			return pu.Hostname()
		}
	}
	return ""
}

// handleEtcd adds the joining master to etcd as a learner (once: a
// resumed join finds it there) and promotes it in the background as soon
// as it has caught up, which its API server waits for. DELETE removes it.
func (s *Service) handleEtcd(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	op, err := s.openOperation(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	if op.Data[DataMaster] != "true" {
		s.fail(w, http.StatusBadRequest, errors.New("only a master joins etcd"))
		return
	}
	ip := op.Data[DataNode]
	cli, err := s.etcd(ctx)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, fmt.Errorf("etcd: %w", err))
		return
	}
	defer cli.Close()
	switch r.Method {
	case http.MethodDelete:
		if err := removeMember(ctx, cli, ip); err != nil {
			s.fail(w, http.StatusInternalServerError, err)
			return
		}
		s.cfg.Log.Info("etcd member removed", "node", ip, "operation", op.OperationID)
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
		if err := s.addLearner(ctx, cli, ip); err != nil {
			s.fail(w, http.StatusInternalServerError, err)
			return
		}
		go s.promote(context.WithoutCancel(ctx), ip)
	}
	resp, err := membership(ctx, cli, ip)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) addLearner(ctx context.Context, cli *clientv3.Client, ip string) error {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("etcd members: %w", err)
	}
	for _, m := range list.Members {
		if memberIP(m.PeerURLs) == ip {
			return nil
		}
		if m.IsLearner {
			return fmt.Errorf("etcd member %s is still a learner: one master joins at a time", memberIP(m.PeerURLs))
		}
	}
	if _, err := cli.MemberAddAsLearner(ctx, []string{peerURL(ip)}); err != nil {
		return fmt.Errorf("adding %s to etcd: %w", ip, err)
	}
	s.cfg.Log.Info("etcd learner added", "node", ip)
	return nil
}

// promote tries until the learner has caught up (etcd refuses until then)
// or a few minutes have passed; a join still waiting asks again.
func (s *Service) promote(ctx context.Context, ip string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cli, err := s.etcd(ctx)
	if err != nil {
		s.cfg.Log.Error("etcd promote", "node", ip, "error", err.Error())
		return
	}
	defer cli.Close()
	for {
		list, err := cli.MemberList(ctx)
		if err == nil {
			for _, m := range list.Members {
				if memberIP(m.PeerURLs) != ip {
					continue
				}
				if !m.IsLearner {
					return
				}
				if _, err = cli.MemberPromote(ctx, m.ID); err == nil {
					s.cfg.Log.Info("etcd member promoted", "node", ip)
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			s.cfg.Log.Error("etcd learner not promoted", "node", ip, "error", fmt.Sprint(err))
			return
		case <-time.After(time.Second):
		}
	}
}

func removeMember(ctx context.Context, cli *clientv3.Client, ip string) error {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("etcd members: %w", err)
	}
	for _, m := range list.Members {
		if memberIP(m.PeerURLs) == ip {
			if _, err := cli.MemberRemove(ctx, m.ID); err != nil {
				return fmt.Errorf("removing %s from etcd: %w", ip, err)
			}
		}
	}
	return nil
}

func membership(ctx context.Context, cli *clientv3.Client, ip string) (EtcdResponse, error) {
	list, err := cli.MemberList(ctx)
	if err != nil {
		return EtcdResponse{}, fmt.Errorf("etcd members: %w", err)
	}
	var out EtcdResponse
	for _, m := range list.Members {
		mip := memberIP(m.PeerURLs)
		out.Members = append(out.Members, mip)
		if mip == ip {
			out.Promoted = !m.IsLearner
		}
	}
	return out, nil
}

// forgetMember removes ip's etcd member, if it has one.
func (s *Service) forgetMember(ctx context.Context, ip string) error {
	cli, err := s.etcd(ctx)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer cli.Close()
	return removeMember(ctx, cli, ip)
}
