// Package fakeclouddriver implements lbcontroller's provider contract on fakecloud's load balancer API
// through its Go client (fakecloud/client), the only fakecloud packages it imports.
package fakeclouddriver
