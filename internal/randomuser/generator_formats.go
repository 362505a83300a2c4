package randomuser

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
)

// ordNode is a decoded JSON value that keeps object key order, so YAML and
// XML list fields in the API's order.
type ordNode struct {
	keys   []string   // object keys, in order
	vals   []*ordNode // object values
	items  []*ordNode // array items
	isObj  bool
	isArr  bool
	scalar string // raw JSON text of a scalar: "\"x\"", 12, null, true
	isStr  bool
	text   string // the decoded string of a string scalar
}

// decodeOrdered parses JSON into an ordNode tree.
func decodeOrdered(b []byte) (*ordNode, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := decodeOrdNode(dec)
	if err != nil {
		return nil, fmt.Errorf("convert response: %w", err)
	}
	return n, nil
}

func decodeOrdNode(dec *json.Decoder) (*ordNode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		n := &ordNode{isObj: v == '{', isArr: v == '['}
		for dec.More() {
			if n.isObj {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				n.keys = append(n.keys, k)
			}
			child, err := decodeOrdNode(dec)
			if err != nil {
				return nil, err
			}
			if n.isObj {
				n.vals = append(n.vals, child)
			} else {
				n.items = append(n.items, child)
			}
		}
		if _, err := dec.Token(); err != nil { // closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		q, _ := json.Marshal(v)
		return &ordNode{scalar: string(q), isStr: true, text: v}, nil
	case json.Number:
		return &ordNode{scalar: v.String(), text: v.String()}, nil
	case bool:
		return &ordNode{scalar: fmt.Sprint(v), text: fmt.Sprint(v)}, nil
	default: // nil
		return &ordNode{scalar: "null"}, nil
	}
}

// writeYAML writes n as block YAML. Strings are double-quoted with JSON
// escapes, which YAML reads the same way.
func writeYAML(out *bytes.Buffer, n *ordNode, indent int) {
	writeYAMLNode(out, n, indent, false)
}

func writeYAMLNode(out *bytes.Buffer, n *ordNode, indent int, inline bool) {
	pad := strings.Repeat(" ", indent)
	switch {
	case n.isObj:
		if len(n.keys) == 0 {
			out.WriteString(pad + "{}\n")
			return
		}
		for i, k := range n.keys {
			if !(inline && i == 0) {
				out.WriteString(pad)
			}
			out.WriteString(k)
			out.WriteByte(':')
			writeYAMLValue(out, n.vals[i], indent)
		}
	case n.isArr:
		if len(n.items) == 0 {
			out.WriteString(pad + "[]\n")
			return
		}
		for _, it := range n.items {
			out.WriteString(pad + "- ")
			if it.isObj && len(it.keys) > 0 {
				writeYAMLNode(out, it, indent+2, true)
			} else {
				writeYAMLValue(out, it, indent)
			}
		}
	default:
		out.WriteString(pad + n.scalar + "\n")
	}
}

// writeYAMLValue writes what follows "key:" or "- ".
func writeYAMLValue(out *bytes.Buffer, v *ordNode, indent int) {
	switch {
	case v.isObj && len(v.keys) > 0:
		out.WriteByte('\n')
		writeYAMLNode(out, v, indent+2, false)
	case v.isArr && len(v.items) > 0:
		out.WriteByte('\n')
		writeYAMLNode(out, v, indent+2, false)
	case v.isObj:
		out.WriteString(" {}\n")
	case v.isArr:
		out.WriteString(" []\n")
	default:
		out.WriteByte(' ')
		out.WriteString(v.scalar)
		out.WriteByte('\n')
	}
}

// writeXML writes the content of n: an element per object key, the element
// repeated for each item of an array, text for scalars (empty for null).
func writeXML(out *bytes.Buffer, n *ordNode) {
	switch {
	case n.isObj:
		for i, k := range n.keys {
			v := n.vals[i]
			if v.isArr {
				for _, it := range v.items {
					writeXMLElem(out, k, it)
				}
				continue
			}
			writeXMLElem(out, k, v)
		}
	case n.isArr:
		for _, it := range n.items {
			writeXMLElem(out, "item", it)
		}
	default:
		_ = xml.EscapeText(out, []byte(n.text))
	}
}

func writeXMLElem(out *bytes.Buffer, name string, v *ordNode) {
	out.WriteString("<" + name + ">")
	writeXML(out, v)
	out.WriteString("</" + name + ">")
}
