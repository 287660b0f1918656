//! The initial process stack the System V x86-64 ABI promises a program at
//! its entry: `argc`, `argv`, `envp`, the auxiliary vector, and the strings
//! they point to. Pure: builds the bytes and says where `rsp` starts.

use super::elf::LoadPlan;

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;

/// The user and group ids a program sees: an unprivileged user.
pub(crate) const GUEST_ID: u64 = 1000;

/// What goes on the stack.
pub(crate) struct StartInfo<'a> {
    pub(crate) args: &'a [String],
    pub(crate) env: &'a [(String, String)],
    /// 16 bytes for `AT_RANDOM` (the stack protector's canary seed).
    pub(crate) random: [u8; 16],
    /// `AT_HWCAP`: CPUID leaf 1's EDX.
    pub(crate) hwcap: u64,
}

/// The stack's bytes, to be written so that they end at `top`, and the
/// initial `rsp` (16-byte aligned, pointing at `argc`).
pub(crate) fn build(plan: &LoadPlan, info: &StartInfo<'_>, top: u64) -> (Vec<u8>, u64) {
    // Strings and the random bytes go at the top; the vectors below them.
    let mut strings: Vec<u8> = Vec::new();
    let offsets = |s: &[u8], strings: &mut Vec<u8>| {
        let at = strings.len() as u64;
        strings.extend_from_slice(s);
        strings.push(0);
        at
    };
    let arg_at: Vec<u64> = info
        .args
        .iter()
        .map(|a| offsets(a.as_bytes(), &mut strings))
        .collect();
    let env_at: Vec<u64> = info
        .env
        .iter()
        .map(|(k, v)| offsets(format!("{k}={v}").as_bytes(), &mut strings))
        .collect();
    let platform_at = offsets(b"x86_64", &mut strings);
    let execfn_at = arg_at.first().copied().unwrap_or(platform_at);
    let random_at = strings.len() as u64;
    strings.extend_from_slice(&info.random);
    let strings_base = (top - strings.len() as u64) & !15;

    let auxv: [(u64, u64); 18] = [
        (AT_PHDR, plan.phdr),
        (AT_PHENT, plan.phent),
        (AT_PHNUM, plan.phnum),
        (AT_PAGESZ, 4096),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, plan.entry),
        (AT_UID, GUEST_ID),
        (AT_EUID, GUEST_ID),
        (AT_GID, GUEST_ID),
        (AT_EGID, GUEST_ID),
        (AT_SECURE, 0),
        (AT_RANDOM, strings_base + random_at),
        (AT_HWCAP, info.hwcap),
        (AT_HWCAP2, 0),
        (AT_CLKTCK, 100),
        (AT_PLATFORM, strings_base + platform_at),
        (AT_EXECFN, strings_base + execfn_at),
    ];
    let mut words: Vec<u64> = Vec::new();
    words.push(info.args.len() as u64);
    words.extend(arg_at.iter().map(|o| strings_base + o));
    words.push(0);
    words.extend(env_at.iter().map(|o| strings_base + o));
    words.push(0);
    for (k, v) in auxv {
        words.push(k);
        words.push(v);
    }
    words.push(AT_NULL);
    words.push(0);
    let vectors_bytes = words.len() as u64 * 8;
    let rsp = (strings_base - vectors_bytes) & !15;
    let mut out = Vec::with_capacity((top - rsp) as usize);
    for w in &words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.resize((strings_base - rsp) as usize, 0);
    out.extend_from_slice(&strings);
    out.resize((top - rsp) as usize, 0);
    (out, rsp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(bytes: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap())
    }

    #[test]
    fn argc_argv_envp_and_auxv_point_at_their_strings() {
        let plan = LoadPlan {
            segments: vec![],
            entry: 0x401000,
            phdr: 0x400040,
            phent: 56,
            phnum: 8,
            end: 0x500000,
        };
        let args = vec!["prog".to_string(), "-x".to_string()];
        let env = vec![("A".to_string(), "1".to_string())];
        let info = StartInfo {
            args: &args,
            env: &env,
            random: [7; 16],
            hwcap: 0,
        };
        let top = 0x100_0000;
        let (bytes, rsp) = build(&plan, &info, top);
        assert_eq!(rsp % 16, 0);
        assert_eq!(rsp + bytes.len() as u64, top);
        let string_at = |addr: u64| {
            let o = (addr - rsp) as usize;
            let end = bytes[o..].iter().position(|b| *b == 0).unwrap();
            String::from_utf8(bytes[o..o + end].to_vec()).unwrap()
        };
        assert_eq!(word(&bytes, 0), 2);
        assert_eq!(string_at(word(&bytes, 1)), "prog");
        assert_eq!(string_at(word(&bytes, 2)), "-x");
        assert_eq!(word(&bytes, 3), 0);
        assert_eq!(string_at(word(&bytes, 4)), "A=1");
        assert_eq!(word(&bytes, 5), 0);
        assert_eq!((word(&bytes, 6), word(&bytes, 7)), (AT_PHDR, 0x400040));
    }
}
