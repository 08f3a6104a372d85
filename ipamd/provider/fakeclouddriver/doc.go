// Package fakeclouddriver is ipamd's driver for fakecloud: provider.Provider over fakecloud/client,
// registered as --cloud=fakecloud. Interfaces it creates carry the tag flatnet.io/node=<instance>
// so that one left unattached by a crash is found and deleted.
package fakeclouddriver
