// Package dbroutes tests configuration files against the real database
// protocols and behaviors. The config package's own tests cannot link them:
// they register fakes and hold the messages that list every registered
// name.
package dbroutes
