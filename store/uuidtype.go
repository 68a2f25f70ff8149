package store

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// Brook's ids are google/uuid UUIDs. pgx sees a uuid.UUID as a
// driver.Valuer and a sql.Scanner, so left alone it formats every id as a
// 36-character string and parses it back, element by element in every
// array of ids. registerUUID teaches a connection's type map that a
// uuid.UUID is its 16 bytes, which pgx's uuid codec reads and writes as is.
//
// Scanning needs the codec itself: pgx asks a target that is a sql.Scanner
// to scan before it tries the wrappers, so tryWrapUUIDScan alone never ran
// for a *uuid.UUID (a profile of the history page had every message id
// formatted and parsed). uuidCodec reads a binary uuid into a *uuid.UUID
// directly; uuid[] gets an array codec of it, so its elements do too.
func registerUUID(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUIDEncode}, m.TryWrapEncodePlanFuncs...)
	m.TryWrapScanPlanFuncs = append([]pgtype.TryWrapScanPlanFunc{tryWrapUUIDScan}, m.TryWrapScanPlanFuncs...)
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
}

// uuidCodec is pgx's uuid codec but for scanning a binary uuid into a
// *uuid.UUID, which it does without the text round trip of sql.Scanner.
type uuidCodec struct{ pgtype.UUIDCodec }

// PlanScan is UUIDCodec's, but for a binary value into a *uuid.UUID.
func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return uuidBinaryScan{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

// uuidBinaryScan reads a binary uuid into a *uuid.UUID.
type uuidBinaryScan struct{}

func (uuidBinaryScan) Scan(src []byte, dst any) error {
	if src == nil {
		// As uuid.UUID's Scan, which read it before: NULL leaves it as it was.
		return nil
	}
	if len(src) != 16 {
		return fmt.Errorf("store: invalid length for a uuid: %d", len(src))
	}
	*dst.(*uuid.UUID) = uuid.UUID(src)
	return nil
}

func tryWrapUUIDEncode(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if u, ok := value.(uuid.UUID); ok {
		return &uuidEncodePlan{}, [16]byte(u), true
	}
	return nil, nil, false
}

type uuidEncodePlan struct{ next pgtype.EncodePlan }

func (p *uuidEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *uuidEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode([16]byte(value.(uuid.UUID)), buf)
}

func tryWrapUUIDScan(target any) (pgtype.WrappedScanPlanNextSetter, any, bool) {
	if u, ok := target.(*uuid.UUID); ok {
		return &uuidScanPlan{}, (*[16]byte)(u), true
	}
	return nil, nil, false
}

type uuidScanPlan struct{ next pgtype.ScanPlan }

func (p *uuidScanPlan) SetNext(next pgtype.ScanPlan) { p.next = next }

func (p *uuidScanPlan) Scan(src []byte, target any) error {
	return p.next.Scan(src, (*[16]byte)(target.(*uuid.UUID)))
}
