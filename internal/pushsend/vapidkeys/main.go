// Command vapidkeys prints a new VAPID key pair for Web Push, as the
// environment lines Brook reads:
//
//	go run ./internal/pushsend/vapidkeys >> .env
package main

import (
	"fmt"
	"os"

	"github.com/brookhq/brook/internal/pushsend"
)

func main() {
	pub, priv, err := pushsend.GenerateVAPIDKeys()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vapidkeys:", err)
		os.Exit(1)
	}
	fmt.Printf("BROOK_VAPID_PUBLIC_KEY=%s\nBROOK_VAPID_PRIVATE_KEY=%s\n", pub, priv)
}
