// Package dsyncprom exports dsync's metrics to Prometheus: a node's
// (NodeMetrics, which a [rest.Server] feeds through
// [rest.ServerConfig].Observer and which reads the lock table at every
// scrape) and a client process's (ClientMetrics, which reads [rest.Client]
// and [dsync.Dsync] statistics at every scrape).
//
// It is a package of its own so that a program that embeds dsync without
// it never compiles Prometheus: rest and dsync know nothing of it.
//
//	m := dsyncprom.NewNodeMetrics(dsyncprom.NodeConfig{Table: table})
//	prometheus.MustRegister(m)
//	srv, err := rest.NewServer(table, rest.ServerConfig{Secret: secret, Observer: m})
//
//	reqs := dsyncprom.NewClientRequests(nil) // before the clients, which take it
//	client, err := rest.NewClient(endpoint, rest.ClientConfig{Secret: secret, Observer: reqs})
//	...
//	c := dsyncprom.NewClientMetrics(dsyncprom.ClientConfig{Dsync: ds, Clients: clients})
//	prometheus.MustRegister(reqs, c)
//
// # Names
//
// Every name starts with dsync_node_ or dsync_client_, counters end in
// _total, and units are in the names (_seconds, _bytes). Labels take
// values from small fixed sets (endpoint, code, mode, reason, outcome) or
// from the cluster's node set (node, on the client's side): never a
// resource name, a UID or an owner, which are unbounded.
//
// Node (NodeMetrics):
//
//	dsync_node_requests_total{endpoint,code}            requests answered, by path and answer code ("ok" for 200)
//	dsync_node_request_duration_seconds{endpoint}       histogram: from a request read to its answer ready
//	dsync_node_received_body_bytes_total                request bodies
//	dsync_node_sent_body_bytes_total                    answer bodies
//	dsync_node_auth_failures_total{code}                requests refused for their credentials: unauthorized, identity, forbidden
//	dsync_node_grants_total{mode}                       lock (write) and rlock (read) operations granted
//	dsync_node_reclaims_total                           reclaims granted (also in grants_total)
//	dsync_node_refusals_total{reason}                   lock and rlock operations refused: conflict, quiet, uid_in_use, released, writer_waiting, stale_reclaim, other
//	dsync_node_drain_refusals_total                     refusals while draining (also in refusals_total, reason quiet)
//	dsync_node_releases_total{outcome}                  unlock and runlock operations: released, not_held
//	dsync_node_force_unlocks_total                      force-unlocks that removed something
//	dsync_node_refreshes_total{outcome}                 UIDs refreshed: refreshed, not_held
//	dsync_node_operation_errors_total{code}             operations answered with an error code
//	dsync_node_held_grants                              grants in the table (at scrape; expired ones until swept)
//	dsync_node_locked_resources                         distinct resources locked (at scrape)
//	dsync_node_tombstones                               UIDs released before their lock arrived, kept one validity
//	dsync_node_grace_remaining_seconds                  restart grace period left (0 outside it)
//	dsync_node_draining                                 1 while the node drains (rest.Server.Drain)
//
// Client (ClientMetrics):
//
//	dsync_client_node_online{node}                      1 if the client takes the node to be online
//	dsync_client_node_offline_transitions_total{node}   times the node was found offline
//	dsync_client_requests_total{node}                   HTTP requests that carried operations
//	dsync_client_batch_requests_total{node}             of which batches
//	dsync_client_operations_total{node}                 operations those requests carried
//	dsync_client_lock_operations_total{node}            of which lock and rlock
//	dsync_client_lock_refusals_total{node}              lock and rlock operations the node refused
//	dsync_client_refresh_operations_total{node}         of which refreshes
//	dsync_client_operation_failures_total{node}         operations that ended in an error
//	dsync_client_operations_not_sent_total{node}        calls failed before any request carried them
//	dsync_client_node_validity_seconds{node}            the validity the node last reported
//	dsync_client_validity_disagreements_total           nodes reporting validities that differ
//	dsync_client_refresh_rounds_total                   refresh rounds ended
//	dsync_client_reclaims_total{outcome}                reclaims sent after node restarts: sent, granted
//
// Client requests (ClientRequests, a rest.ClientObserver):
//
//	dsync_client_request_duration_seconds{node}         histogram: from sending a request to reading its answer
//	dsync_client_request_errors_total{node}             requests that failed or were not answered 200
//
// Client events (ClientEvents, a dsync.Observer):
//
//	dsync_client_acquire_duration_seconds{kind,outcome}  histogram: acquisitions, from start to end; kind write, read, permit;
//	                                                     outcome acquired, refused, timeout, cancelled, no_quorum, deadlock, error
//	dsync_client_locks_lost_total{cause}                 held locks lost: not_held, expired, stopped, at_release
//	dsync_client_refresh_round_duration_seconds          histogram: refresh rounds, from sending to applying the answers
//
//	events := dsyncprom.NewClientEvents(nil)
//	ds, err := dsync.New(lockers, dsync.Config{Observer: events})
//	prometheus.MustRegister(events)
package dsyncprom
