package cratedb

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Array parameters without an allocation per element. pgx encodes a slice parameter through
// pgtype.ArrayGetter.Index, which returns each element as an interface: for a string, a time.Time or a
// pgtype.Float8 that boxes the element on the heap (11 allocations per raw row, 18 per aggregate row). The types
// below return instead a reference to the element — a struct of one pointer, which an interface holds without
// allocating — that implements the pgtype valuer interface of its column's codec. The bytes sent are the same
// as for the plain slices.

// arrayDims is the one dimension of a flat array, nil (a NULL array) for a nil slice as in pgtype.FlatArray.
func arrayDims(n int, isNil bool) []pgtype.ArrayDimension {
	if isNil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(n), LowerBound: 1}}
}

type textArray []string

type textRef struct{ p *string }

func (r textRef) TextValue() (pgtype.Text, error) { return pgtype.Text{String: *r.p, Valid: true}, nil }

func (a textArray) Dimensions() []pgtype.ArrayDimension { return arrayDims(len(a), a == nil) }
func (a textArray) Index(i int) any                     { return textRef{&a[i]} }
func (a textArray) IndexType() any                      { return textRef{new(string)} }

type nullTextArray []pgtype.Text

type nullTextRef struct{ p *pgtype.Text }

func (r nullTextRef) TextValue() (pgtype.Text, error) { return *r.p, nil }

func (a nullTextArray) Dimensions() []pgtype.ArrayDimension { return arrayDims(len(a), a == nil) }
func (a nullTextArray) Index(i int) any                     { return nullTextRef{&a[i]} }
func (a nullTextArray) IndexType() any                      { return nullTextRef{new(pgtype.Text)} }

type float8Array []pgtype.Float8

type float8Ref struct{ p *pgtype.Float8 }

func (r float8Ref) Float64Value() (pgtype.Float8, error) { return *r.p, nil }

func (a float8Array) Dimensions() []pgtype.ArrayDimension { return arrayDims(len(a), a == nil) }
func (a float8Array) Index(i int) any                     { return float8Ref{&a[i]} }
func (a float8Array) IndexType() any                      { return float8Ref{new(pgtype.Float8)} }

type int8Array []int64

type int8Ref struct{ p *int64 }

func (r int8Ref) Int64Value() (pgtype.Int8, error) { return pgtype.Int8{Int64: *r.p, Valid: true}, nil }

func (a int8Array) Dimensions() []pgtype.ArrayDimension { return arrayDims(len(a), a == nil) }
func (a int8Array) Index(i int) any                     { return int8Ref{&a[i]} }
func (a int8Array) IndexType() any                      { return int8Ref{new(int64)} }

type boolArray []bool

type boolRef struct{ p *bool }

func (r boolRef) BoolValue() (pgtype.Bool, error) { return pgtype.Bool{Bool: *r.p, Valid: true}, nil }

func (a boolArray) Dimensions() []pgtype.ArrayDimension { return arrayDims(len(a), a == nil) }
func (a boolArray) Index(i int) any                     { return boolRef{&a[i]} }
func (a boolArray) IndexType() any                      { return boolRef{new(bool)} }

type timeArray []time.Time

type timeRef struct{ p *time.Time }

func (r timeRef) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: *r.p, Valid: true}, nil
}

func (a timeArray) Dimensions() []pgtype.ArrayDimension { return arrayDims(len(a), a == nil) }
func (a timeArray) Index(i int) any                     { return timeRef{&a[i]} }
func (a timeArray) IndexType() any                      { return timeRef{new(time.Time)} }

type nullTimeArray []pgtype.Timestamptz

type nullTimeRef struct{ p *pgtype.Timestamptz }

func (r nullTimeRef) TimestamptzValue() (pgtype.Timestamptz, error) { return *r.p, nil }

func (a nullTimeArray) Dimensions() []pgtype.ArrayDimension { return arrayDims(len(a), a == nil) }
func (a nullTimeArray) Index(i int) any                     { return nullTimeRef{&a[i]} }
func (a nullTimeArray) IndexType() any                      { return nullTimeRef{new(pgtype.Timestamptz)} }
