package server

import (
	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/raftnode"
)

// snapshotKindProto converts a snapshot kind to the API enum.
func snapshotKindProto(k raftnode.SnapshotKind) sqlraftv1.SnapshotKind {
	switch k {
	case raftnode.SnapshotFull:
		return sqlraftv1.SnapshotKind_SNAPSHOT_KIND_FULL
	case raftnode.SnapshotIncremental:
		return sqlraftv1.SnapshotKind_SNAPSHOT_KIND_INCREMENTAL
	default:
		return sqlraftv1.SnapshotKind_SNAPSHOT_KIND_UNSPECIFIED
	}
}

// snapshotStatusProto converts a node's snapshot store stats to the API
// message for ClusterService.Status.
func snapshotStatusProto(st raftnode.SnapshotStats) *sqlraftv1.SnapshotStatus {
	out := &sqlraftv1.SnapshotStatus{LeasesHeld: uint32(st.LeasesHeld), LeaseWaits: st.LeaseWaits,
		LastError: st.LastError, LastSnapshotIndex: st.LastSnapshotIndex}
	for _, in := range st.Snapshots {
		out.Snapshots = append(out.Snapshots, &sqlraftv1.SnapshotInfo{Id: in.ID, Kind: snapshotKindProto(in.Kind),
			Index: in.Index, Term: in.Term, SizeBytes: in.Size})
	}
	return out
}
