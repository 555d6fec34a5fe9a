use super::*;
use proptest::prelude::*;
use tokio::io::AsyncReadExt;

/// A pgbench-like text: compressible.
fn text(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes);
    let mut i = 0u64;
    while out.len() < bytes {
        out.extend_from_slice(format!("{i}\t{}\t0\t\n", i % 97 * 13).as_bytes());
        i += 1;
    }
    out.truncate(bytes);
    out
}

fn random(bytes: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..bytes).map(|_| rng.u8(..)).collect()
}

async fn store(data: &[u8], codec: Codec) -> (Vec<u8>, Codec, Arc<Counts>) {
    let e = encode(Box::pin(std::io::Cursor::new(data.to_vec())), codec, 1)
        .await
        .unwrap();
    let mut stored = Vec::new();
    let mut r = e.reader;
    r.read_to_end(&mut stored).await.unwrap();
    (stored, e.codec, e.counts)
}

async fn read_back(stored: Vec<u8>, codec: Codec) -> std::io::Result<Vec<u8>> {
    let (mut r, _) = decode(Box::pin(std::io::Cursor::new(stored)), codec, "b1");
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.map(|_| out)
}

fn corrupt_backup(e: std::io::Error) -> String {
    let err = crate::error::from_io("test", "read", e);
    assert!(
        matches!(err.kind(), ErrorKind::VerificationFailed { .. }),
        "a corrupt backup, not {err}"
    );
    err.to_string()
}

#[tokio::test]
async fn compressible_data_is_stored_smaller_and_reads_back_the_same() {
    let data = text(3 << 20);
    let (stored, codec, counts) = store(&data, Codec::DEFAULT).await;
    assert_eq!(codec, Codec::Zstd { level: 3 });
    assert!(
        stored.len() * 4 < data.len(),
        "{} of {}",
        stored.len(),
        data.len()
    );
    assert_eq!(
        (counts.plain(), counts.stored()),
        (data.len() as u64, stored.len() as u64)
    );
    assert_eq!(
        codec.labels().get(CODEC_LABEL).map(String::as_str),
        Some("zstd")
    );
    assert_eq!(Codec::from_labels(&codec.labels()).unwrap(), codec);
    assert_eq!(read_back(stored, codec).await.unwrap(), data);
}

#[tokio::test]
async fn incompressible_data_is_stored_raw() {
    let data = random(2 << 20);
    let (stored, codec, counts) = store(&data, Codec::DEFAULT).await;
    assert_eq!(codec, Codec::Raw, "random bytes are stored as they are");
    assert_eq!(stored, data);
    assert_eq!(counts.plain(), counts.stored());
    assert_eq!(
        read_back(stored, Codec::from_labels(&codec.labels()).unwrap())
            .await
            .unwrap(),
        data
    );
}

#[tokio::test]
async fn an_artifact_written_before_compression_reads_back_as_it_is() {
    let old = b"PGDMP\x01\x0e\x00 an old -Fc dump with its own zlib".to_vec();
    let codec = Codec::from_labels(&BTreeMap::new()).unwrap();
    assert_eq!(codec, Codec::Raw);
    assert_eq!(read_back(old.clone(), codec).await.unwrap(), old);
    let unknown = BTreeMap::from([(CODEC_LABEL.to_string(), "lz77".to_string())]);
    assert!(Codec::from_labels(&unknown).is_err());
}

#[tokio::test]
async fn a_corrupted_frame_is_a_corrupt_backup() {
    let data = text(1 << 20);
    let (mut stored, codec, _) = store(&data, Codec::DEFAULT).await;
    let middle = stored.len() / 2;
    stored[middle] ^= 0x5a;
    let err = read_back(stored, codec).await.unwrap_err();
    assert!(corrupt_backup(err).contains("corrupt backup b1"));
}

#[tokio::test]
async fn a_truncated_artifact_is_a_corrupt_backup_wherever_it_is_cut() {
    let data = text(256 * 1024);
    let (stored, codec, _) = store(&data, Codec::Zstd { level: 1 }).await;
    // Inside the frame, just before the end frame, and inside the end frame.
    for cut in [stored.len() / 2, stored.len() - END_LEN, stored.len() - 3] {
        let err = read_back(stored[..cut].to_vec(), codec).await.unwrap_err();
        corrupt_backup(err);
    }
    // A whole frame with another's end frame: the length does not match.
    let (other, _, _) = store(&text(1000), Codec::Zstd { level: 1 }).await;
    let mut spliced = stored[..stored.len() - END_LEN].to_vec();
    spliced.extend_from_slice(&other[other.len() - END_LEN..]);
    assert!(corrupt_backup(read_back(spliced, codec).await.unwrap_err()).contains("were stored"));
}

#[tokio::test]
async fn an_empty_artifact_round_trips() {
    let (stored, codec, _) = store(&[], Codec::DEFAULT).await;
    assert_eq!(read_back(stored, codec).await.unwrap(), Vec::<u8>::new());
}

#[tokio::test]
async fn a_store_read_error_stays_the_stores() {
    let failing: ArtifactReader =
        Box::pin(std::io::Cursor::new(vec![0x28, 0xb5, 0x2f, 0xfd]).chain(FailingReader));
    let (mut r, _) = decode(failing, Codec::DEFAULT, "b1");
    let err = r.read_to_end(&mut Vec::new()).await.unwrap_err();
    let err = crate::error::from_io("test", "read", err);
    assert!(
        matches!(err.kind(), ErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
}

struct FailingReader;

impl AsyncRead for FailingReader {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Err(Error::new(
            "store",
            "get",
            ErrorKind::ChecksumMismatch {
                expected: "a".into(),
                actual: "b".into(),
            },
        )
        .into()))
    }
}

#[test]
fn levels_outside_zstds_range_are_refused() {
    assert!(Codec::Zstd { level: 0 }.validate().is_err());
    assert!(Codec::Zstd { level: 20 }.validate().is_err());
    assert!(Codec::Zstd { level: 19 }.validate().is_ok());
    assert!(default_threads() <= MAX_THREADS);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_bytes_round_trip_and_any_damage_is_caught(
        data in prop::collection::vec(any::<u8>(), 0..20_000),
        flip in any::<prop::sample::Index>(),
        repeat in 1usize..40,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // Repeated so that some inputs compress and others do not.
        let data: Vec<u8> = data.iter().copied().cycle().take(data.len() * repeat).collect();
        rt.block_on(async {
            let (stored, codec, _) = store(&data, Codec::DEFAULT).await;
            prop_assert_eq!(read_back(stored.clone(), codec).await.unwrap(), data.clone());
            if codec != Codec::Raw && !stored.is_empty() {
                let mut damaged = stored.clone();
                let i = flip.index(damaged.len());
                damaged[i] ^= 0x01;
                // Never a panic, never the original bytes passed off as whole with a wrong length.
                if let Ok(out) = read_back(damaged, codec).await {
                    prop_assert_eq!(out, data.clone(), "a flip in a skippable part changes nothing");
                }
            }
            Ok(())
        })?;
    }
}
