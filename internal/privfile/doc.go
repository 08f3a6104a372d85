// Package privfile keeps secrets in a private runtime directory: a directory only its owner can
// enter (0700, owned by the effective user) holding files only the owner can read (0600). It
// refuses a directory or file that another user owns or that group or others may open, and it
// never follows a symbolic link in the last component, so a file planted by another local user
// (in /tmp, say) can never become a secret this process trusts.
package privfile
