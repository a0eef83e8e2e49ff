//! The dictionary grammar: [`Dictionary::load`] and [`Dictionary::parse_str`] read `ATTRIBUTE`,
//! `VALUE`, `VENDOR`, `BEGIN-VENDOR`/`END-VENDOR`, `$INCLUDE` and comments into the model, with
//! include loop and depth guards; every error names the file and line.

use std::collections::BTreeMap;
use std::path::Path;

use super::{AttrType, AttributeDef, DictError, Dictionary, IncludeResolver, VendorDef};

/// Deepest `$INCLUDE` nesting accepted (a guard in addition to loop detection).
const MAX_INCLUDE_DEPTH: usize = 32;

impl Dictionary {
    /// Reads `path` and every file it `$INCLUDE`s (paths relative to the including file).
    pub fn load(path: &Path) -> Result<Dictionary, DictError> {
        let mut read = |p: &str| -> Result<(String, String), String> {
            let canonical = std::fs::canonicalize(p).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&canonical).map_err(|e| e.to_string())?;
            Ok((canonical.to_string_lossy().into_owned(), text))
        };
        let (name, text) = read(&path.to_string_lossy()).map_err(|reason| DictError {
            file: path.display().to_string(),
            line: 0,
            reason,
        })?;
        Dictionary::parse_str(&name, &text, &mut read)
    }

    /// Parses dictionary `text` named `name`; `include` resolves `$INCLUDE` paths (already joined
    /// with the directory of the including file's name) to `(name, text)`. Pure: no I/O of its own.
    pub fn parse_str(
        name: &str,
        text: &str,
        include: &mut IncludeResolver<'_>,
    ) -> Result<Dictionary, DictError> {
        let mut parser = Parser {
            dict: Dictionary::default(),
            include,
            stack: vec![name.to_owned()],
        };
        parser.parse_file(name, text)?;
        Ok(parser.dict)
    }
}

/// Parses an unsigned number: decimal or `0x` hex.
pub(super) fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parser state shared across included files.
struct Parser<'i, 'r> {
    dict: Dictionary,
    include: &'i mut IncludeResolver<'r>,
    /// Names of the files being parsed, outermost first (include loop detection).
    stack: Vec<String>,
}

impl Parser<'_, '_> {
    fn parse_file(&mut self, file: &str, text: &str) -> Result<(), DictError> {
        // BEGIN-VENDOR blocks do not span files.
        let mut block: Option<(u32, String)> = None;
        let mut last_line = 0;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            last_line = line;
            let err = |reason: String| DictError {
                file: file.to_owned(),
                line,
                reason,
            };
            let content = raw.split_once('#').map_or(raw, |(c, _)| c);
            let tokens: Vec<&str> = content.split_whitespace().collect();
            match tokens.as_slice() {
                [] => {}
                [kw @ ("$INCLUDE" | "$INCLUDE-"), path] => {
                    self.include_file(file, path, *kw == "$INCLUDE-")
                        .map_err(|e| match e {
                            IncludeError::Here(reason) => err(reason),
                            IncludeError::Nested(inner) => inner,
                        })?;
                }
                ["ATTRIBUTE", name, number, ty, rest @ ..] => {
                    let vendor = block.as_ref().map_or(0, |(v, _)| *v);
                    self.attribute(name, number, ty, rest, vendor)
                        .map_err(err)?;
                }
                ["VALUE", attribute, name, number] => {
                    self.value(attribute, name, number).map_err(err)?;
                }
                ["VENDOR", name, number, rest @ ..] => {
                    self.vendor(name, number, rest).map_err(err)?;
                }
                ["BEGIN-VENDOR", name] => {
                    if let Some((_, open)) = &block {
                        return Err(err(format!(
                            "BEGIN-VENDOR {name} inside BEGIN-VENDOR {open}"
                        )));
                    }
                    let vendor = self
                        .dict
                        .vendor(name)
                        .ok_or_else(|| err(format!("BEGIN-VENDOR for unknown vendor {name}")))?;
                    block = Some((vendor.id, vendor.name.clone()));
                }
                ["END-VENDOR", name] => match &block {
                    Some((_, open)) if open.eq_ignore_ascii_case(name) => block = None,
                    Some((_, open)) => {
                        return Err(err(format!("END-VENDOR {name} closes BEGIN-VENDOR {open}")))
                    }
                    None => return Err(err(format!("END-VENDOR {name} without BEGIN-VENDOR"))),
                },
                [keyword, ..] => {
                    return Err(err(format!("unknown or malformed statement {keyword}")));
                }
            }
        }
        if let Some((_, open)) = block {
            return Err(DictError {
                file: file.to_owned(),
                line: last_line,
                reason: format!("BEGIN-VENDOR {open} without END-VENDOR"),
            });
        }
        Ok(())
    }

    fn include_file(&mut self, file: &str, path: &str, optional: bool) -> Result<(), IncludeError> {
        let joined = if Path::new(path).is_absolute() {
            path.to_owned()
        } else {
            Path::new(file)
                .parent()
                .map_or_else(|| Path::new(path).to_path_buf(), |dir| dir.join(path))
                .to_string_lossy()
                .into_owned()
        };
        let (name, text) = match (self.include)(&joined) {
            Ok(found) => found,
            Err(_) if optional => return Ok(()),
            Err(e) => return Err(IncludeError::Here(format!("cannot include {joined}: {e}"))),
        };
        if self.stack.contains(&name) {
            let chain = self.stack.join(" -> ");
            return Err(IncludeError::Here(format!(
                "include loop: {chain} -> {name}"
            )));
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(IncludeError::Here("includes nested too deeply".to_owned()));
        }
        self.stack.push(name.clone());
        let result = self.parse_file(&name, &text);
        self.stack.pop();
        result.map_err(IncludeError::Nested)
    }

    fn vendor(&mut self, name: &str, number: &str, rest: &[&str]) -> Result<(), String> {
        let id = parse_number(number)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("bad vendor number {number}"))?;
        let (type_len, length_len) = match rest {
            [] => (1, 1),
            [format] => {
                let spec = format
                    .strip_prefix("format=")
                    .ok_or_else(|| format!("unknown vendor option {format}"))?;
                match spec.split_once(',') {
                    Some(("1", "1")) => (1, 1),
                    Some(("1", "0")) => (1, 0),
                    Some(("2", "1")) => (2, 1),
                    Some(("2", "2")) => (2, 2),
                    Some(("2", "0")) => (2, 0),
                    Some(("4", "0")) => (4, 0),
                    _ => return Err(format!("unsupported vendor format {spec}")),
                }
            }
            _ => return Err("too many fields in VENDOR".to_owned()),
        };
        let key = name.to_ascii_lowercase();
        if let Some(existing) = self
            .dict
            .vendor_by_name
            .get(&key)
            .and_then(|&i| self.dict.vendors.get(i))
        {
            if existing.id != id {
                return Err(format!("vendor {name} already defined as {}", existing.id));
            }
            return Ok(());
        }
        self.dict
            .vendor_by_name
            .insert(key, self.dict.vendors.len());
        self.dict.vendors.push(VendorDef {
            name: name.to_owned(),
            id,
            type_len,
            length_len,
        });
        Ok(())
    }

    fn attribute(
        &mut self,
        name: &str,
        number: &str,
        ty: &str,
        rest: &[&str],
        block_vendor: u32,
    ) -> Result<(), String> {
        let ty = AttrType::from_name(ty).ok_or_else(|| format!("unknown type {ty}"))?;
        let number = parse_number(number)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("bad attribute number {number}"))?;
        let mut def = AttributeDef {
            name: name.to_owned(),
            vendor: block_vendor,
            number,
            ty,
            encrypt: 0,
            has_tag: false,
            concat: false,
            other_flags: Vec::new(),
            values: BTreeMap::new(),
        };
        match rest {
            [] => {}
            [flags] => {
                for flag in flags.split(',') {
                    match flag.split_once('=') {
                        Some(("encrypt", n)) => {
                            def.encrypt = n
                                .parse()
                                .ok()
                                .filter(|n| *n <= 3)
                                .ok_or_else(|| format!("bad encrypt={n}"))?;
                        }
                        None if flag == "has_tag" => def.has_tag = true,
                        None if flag == "concat" => def.concat = true,
                        // Old format: the vendor name as the fifth field.
                        None if self.dict.vendor(flag).is_some()
                            && flags.split(',').count() == 1 =>
                        {
                            def.vendor = self.dict.vendor(flag).map_or(0, |v| v.id);
                        }
                        _ if flag.is_empty() => return Err("empty flag".to_owned()),
                        _ => def.other_flags.push(flag.to_owned()),
                    }
                }
            }
            _ => return Err("too many fields in ATTRIBUTE".to_owned()),
        }
        let max = if def.vendor == 0 {
            255
        } else {
            let vendor = self
                .dict
                .vendor_by_id(def.vendor)
                .ok_or_else(|| format!("unknown vendor {}", def.vendor))?;
            match vendor.type_len {
                1 => 255,
                2 => 65535,
                _ => u32::MAX,
            }
        };
        if number > max || (def.vendor == 0 && number == 0) {
            return Err(format!("attribute number {number} out of range"));
        }
        let key = name.to_ascii_lowercase();
        if let Some(existing) = self
            .dict
            .by_name
            .get(&key)
            .and_then(|&i| self.dict.attrs.get(i))
        {
            if (existing.vendor, existing.number, existing.ty) == (def.vendor, def.number, def.ty) {
                return Ok(());
            }
            return Err(format!("attribute {name} already defined differently"));
        }
        let index = self.dict.attrs.len();
        self.dict.by_name.insert(key, index);
        // The first name for a number wins when decoding; later ones are aliases.
        self.dict
            .by_number
            .entry((def.vendor, def.number))
            .or_insert(index);
        self.dict.attrs.push(def);
        Ok(())
    }

    fn value(&mut self, attribute: &str, name: &str, number: &str) -> Result<(), String> {
        let index = *self
            .dict
            .by_name
            .get(&attribute.to_ascii_lowercase())
            .ok_or_else(|| format!("VALUE for unknown attribute {attribute}"))?;
        let def = self
            .dict
            .attrs
            .get_mut(index)
            .ok_or_else(|| format!("VALUE for unknown attribute {attribute}"))?;
        let max = def
            .ty
            .value_max()
            .ok_or_else(|| format!("VALUE for {attribute}, which is not an integer type"))?;
        let v = parse_number(number)
            .filter(|v| *v <= max)
            .ok_or_else(|| format!("bad VALUE number {number}"))?;
        def.values.insert(name.to_owned(), v);
        Ok(())
    }
}

/// An include failure: either at the `$INCLUDE` line itself or inside the included file.
enum IncludeError {
    Here(String),
    Nested(DictError),
}
