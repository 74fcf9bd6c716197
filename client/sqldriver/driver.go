package sqldriver

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"time"

	sqlraftv1 "github.com/sqlraft/sqlraft/api/sqlraft/v1"
	"github.com/sqlraft/sqlraft/client"
)

// DriverName is the name the driver is registered under.
const DriverName = "sqlraft"

func init() {
	sql.Register(DriverName, &Driver{})
}

// Driver is the database/sql driver for sqlraft. sql.Open("sqlraft", dsn)
// uses it through OpenConnector: one client (one connection per node) is
// shared by every connection of the pool.
type Driver struct{}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.DriverContext = (*Driver)(nil)
)

// Open returns a connection with its own client, closed with it. Pools
// opened with sql.Open use OpenConnector instead.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	ctr, err := d.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	c := ctr.(*Connector)
	return &conn{client: c.client, opts: c.opts, ownsClient: true}, nil
}

// OpenConnector parses dsn (see ParseDSN) and returns a connector that
// owns a new client; sql.DB.Close closes it.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	copts, err := cfg.ClientOptions()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg.Addrs, copts...)
	if err != nil {
		return nil, err
	}
	return &Connector{client: c, opts: ConnOptions{Consistency: cfg.Consistency, Freshness: cfg.Freshness}, owns: true}, nil
}

// ConnOptions are the per-connection settings of a Connector.
type ConnOptions struct {
	// Consistency of every Query (UNSPECIFIED: the server's default).
	Consistency sqlraftv1.ReadConsistency
	// Freshness bounds NONE reads at followers (0: no bound).
	Freshness time.Duration
}

// Connector makes connections on one client. It implements io.Closer:
// sql.DB.Close closes the client when the connector created it.
type Connector struct {
	client *client.Client
	opts   ConnOptions
	owns   bool
}

var _ driver.Connector = (*Connector)(nil)

// NewConnector returns a connector on an existing client, for sql.OpenDB:
//
//	db := sql.OpenDB(sqldriver.NewConnector(c, sqldriver.ConnOptions{}))
//
// Closing the sql.DB does not close c.
func NewConnector(c *client.Client, opts ConnOptions) *Connector {
	return &Connector{client: c, opts: opts}
}

// Connect returns a connection. It opens nothing: the client connects to
// nodes on first use and shares its connections.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	return &conn{client: c.client, opts: c.opts}, nil
}

// Driver returns the sqlraft driver.
func (c *Connector) Driver() driver.Driver { return &Driver{} }

// Close closes the client if the connector created it.
func (c *Connector) Close() error {
	if c.owns {
		return c.client.Close()
	}
	return nil
}
