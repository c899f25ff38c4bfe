package change

import "strings"

// Keys are the storage keys of the data model (docs/ARCHITECTURE.md, "Data model"). Every
// store adapter uses them, so the local and the DynamoDB copies are laid out alike.

// PartitionKey of an object: C#<conn>#<kind>#<id>, or its parent's for kinds stored
// under a parent (a ticket's actions live in the ticket's partition).
func PartitionKey(conn string, kind Kind, id, parentID string) string {
	if spec, ok := Lookup(kind); ok && spec.Parent != "" {
		return "C#" + conn + "#" + string(spec.Parent) + "#" + parentID
	}
	return "C#" + conn + "#" + string(kind) + "#" + id
}

// SortKey of an object: STATE, or <KIND>#<id> under a parent (ACTION#<id>).
func SortKey(kind Kind, id string) string {
	if spec, ok := Lookup(kind); ok && spec.Parent != "" {
		return strings.ToUpper(string(kind)) + "#" + id
	}
	return "STATE"
}

// ClientIndexKey is the by-client index partition: C#<conn>#CLIENT#<clientId>.
func ClientIndexKey(conn, clientID string) string { return "C#" + conn + "#CLIENT#" + clientID }

// ClientIndexSort is the by-client index sort key: <kind>#<id>.
func ClientIndexSort(kind Kind, id string) string { return string(kind) + "#" + id }

// DeliveryPartitionKey is a delivery record's partition: C#<conn>#DELIVERY#<deliveryId>.
// One query on it lists what the delivery did to each object it carried.
func DeliveryPartitionKey(conn, deliveryID string) string {
	return "C#" + conn + "#DELIVERY#" + deliveryID
}

// DeliverySortKey is a delivery record's sort key: <kind>#<id>. A delivery carries one
// event, so at most one object of a kind (a ticket and its note), and the note's id is
// unique under that ticket.
func DeliverySortKey(kind Kind, id string) string { return string(kind) + "#" + id }
