package sqldriver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/sqlraft/sqlraft/client/sqldriver"
	"github.com/sqlraft/sqlraft/server/servertest"
)

func Example() {
	addr, stop := servertest.ExampleNode()
	defer stop()

	// With a real cluster: "sqlraft://node1:6001,node2:6001,node3:6001?consistency=linearizable"
	db, err := sql.Open("sqlraft", "sqlraft://"+addr+"?consistency=linearizable")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, err := db.ExecContext(ctx, "CREATE TABLE acct(id INTEGER PRIMARY KEY, owner TEXT, balance INTEGER)"); err != nil {
		log.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO acct(owner, balance) VALUES(?, ?), (?, ?)", "fiona", 100, "gus", 0); err != nil {
		log.Fatal(err)
	}

	// A transaction's statements are sent together, as one Request, at Commit.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	tx.ExecContext(ctx, "UPDATE acct SET balance = balance - :n WHERE owner = 'fiona'", sql.Named("n", 30))
	tx.ExecContext(ctx, "UPDATE acct SET balance = balance + :n WHERE owner = 'gus'", sql.Named("n", 30))
	if _, err := tx.QueryContext(ctx, "SELECT * FROM acct"); errors.Is(err, sqldriver.ErrQueryInTx) {
		fmt.Println("no reads inside a transaction")
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	rows, err := db.QueryContext(ctx, "SELECT owner, balance FROM acct ORDER BY id")
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var owner string
		var balance int
		if err := rows.Scan(&owner, &balance); err != nil {
			log.Fatal(err)
		}
		fmt.Println(owner, balance)
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// no reads inside a transaction
	// fiona 70
	// gus 30
}
