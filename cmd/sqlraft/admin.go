package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
)

// clusterCall runs one ClusterService call and prints its response as JSON
// (or with table, when given and the output format is table).
func clusterCall[T proto.Message](g *globals, cmd *cobra.Command,
	call func(context.Context, sqlraftv1.ClusterServiceClient) (T, error), table func(T)) error {
	var resp T
	err := g.call(cmd.Context(), func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = call(ctx, sqlraftv1.NewClusterServiceClient(conn))
		return err
	})
	if err != nil {
		return err
	}
	if table != nil && g.output == "table" {
		table(resp)
		return nil
	}
	return printJSON(cmd.OutOrStdout(), resp)
}

func nodesCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "nodes",
		Short: "List the cluster's members and whether they are reachable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return clusterCall(g, cmd, func(ctx context.Context, c sqlraftv1.ClusterServiceClient) (*sqlraftv1.NodesResponse, error) {
				return c.Nodes(ctx, &sqlraftv1.NodesRequest{})
			}, func(r *sqlraftv1.NodesResponse) {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tGRPC\tRAFT\tVOTER\tLEADER\tREACHABLE\tAPPLIED")
				for _, n := range r.GetNodes() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%v\t%d\n", n.GetId(), n.GetGrpcAddress(), n.GetRaftAddress(),
						n.GetVoter(), n.GetLeader(), n.GetReachable(), n.GetAppliedIndex())
				}
				tw.Flush()
			})
		},
	}
}

func statusCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the node's Raft, database and snapshot state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return clusterCall(g, cmd, func(ctx context.Context, c sqlraftv1.ClusterServiceClient) (*sqlraftv1.StatusResponse, error) {
				return c.Status(ctx, &sqlraftv1.StatusRequest{})
			}, nil)
		},
	}
}

func checksumCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "checksum",
		Short: "Show the digest of the node's database content and the index it reflects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return clusterCall(g, cmd, func(ctx context.Context, c sqlraftv1.ClusterServiceClient) (*sqlraftv1.ChecksumResponse, error) {
				return c.Checksum(ctx, &sqlraftv1.ChecksumRequest{})
			}, func(r *sqlraftv1.ChecksumResponse) {
				fmt.Fprintf(cmd.OutOrStdout(), "%s  applied index %d  node %s\n", r.GetSha256(), r.GetAppliedIndex(), r.GetHeader().GetNodeId())
			})
		},
	}
}

func joinCommand(g *globals) *cobra.Command {
	req := &sqlraftv1.JoinRequest{}
	cmd := &cobra.Command{
		Use:   "join ID RAFT_ADDRESS [GRPC_ADDRESS]",
		Short: "Add a node to the cluster (or update its addresses)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Id, req.RaftAddress = args[0], args[1]
			if len(args) == 3 {
				req.GrpcAddress = args[2]
			}
			return clusterCall(g, cmd, func(ctx context.Context, c sqlraftv1.ClusterServiceClient) (*sqlraftv1.JoinResponse, error) {
				return c.Join(ctx, req)
			}, func(*sqlraftv1.JoinResponse) { fmt.Fprintf(cmd.OutOrStdout(), "%s joined\n", req.GetId()) })
		},
	}
	cmd.Flags().BoolVar(&req.NonVoter, "non-voter", false, "join as a non-voting read replica")
	return cmd
}

func removeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a node from the cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return clusterCall(g, cmd, func(ctx context.Context, c sqlraftv1.ClusterServiceClient) (*sqlraftv1.RemoveResponse, error) {
				return c.Remove(ctx, &sqlraftv1.RemoveRequest{Id: args[0]})
			}, func(*sqlraftv1.RemoveResponse) { fmt.Fprintf(cmd.OutOrStdout(), "%s removed\n", args[0]) })
		},
	}
}

func transferCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leadership [ID]",
		Short: "Hand leadership to the given voter, or to any",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &sqlraftv1.TransferLeadershipRequest{}
			if len(args) == 1 {
				req.Id = args[0]
			}
			return clusterCall(g, cmd, func(ctx context.Context, c sqlraftv1.ClusterServiceClient) (*sqlraftv1.TransferLeadershipResponse, error) {
				return c.TransferLeadership(ctx, req)
			}, func(r *sqlraftv1.TransferLeadershipResponse) {
				fmt.Fprintf(cmd.OutOrStdout(), "leader is now %s\n", r.GetHeader().GetLeaderId())
			})
		},
	}
}

func snapshotCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshot",
		Short: "Take a Raft snapshot on the node now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return clusterCall(g, cmd, func(ctx context.Context, c sqlraftv1.ClusterServiceClient) (*sqlraftv1.SnapshotResponse, error) {
				return c.Snapshot(ctx, &sqlraftv1.SnapshotRequest{})
			}, nil)
		},
	}
}
