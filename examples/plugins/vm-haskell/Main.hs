{-# LANGUAGE ScopedTypeVariables #-}
-- | vm-haskell: a dflow VM-backend plugin (protocol 1, docs/plugins.md), the
-- Haskell twin of ../vm-local.sh. Each node is a detached `$DFLOW_EXE agent`
-- process with its own directory and loopback address:
--
-- > node N  ->  address 127.0.0.(100+N)   (N = 0..154)
-- >             directory $DFLOW_STATE_DIR/plugin-nodes/N/
-- >               node.json, authorized_keys, agent.log, agent.pid, agent.lock
--
-- Only packages that ship with GHC: base, directory, filepath, process, time,
-- unix. JSON is parsed and printed by the few lines below.
module Main (main) where

import Control.Concurrent (threadDelay)
import Control.Exception (ErrorCall (..), SomeException, bracket, catch, displayException, fromException, onException, throwIO, try)
import Control.Monad (filterM, forM, unless, when)
import Data.Char (chr, isDigit, isHexDigit, isSpace, ord)
import Data.List (intercalate, sortOn)
import Data.Maybe (fromMaybe)
import Data.Time (defaultTimeLocale, formatTime, getCurrentTime)
import Foreign.C.Error (eWOULDBLOCK, getErrno)
import Foreign.C.Types (CInt (..))
import Numeric (readHex, showHex)
import System.Directory
import System.Environment (getArgs, lookupEnv)
import System.Exit (exitWith, ExitCode (..))
import System.FilePath ((</>))
import System.IO
import System.Posix.IO (OpenMode (..), closeFd, defaultFileFlags, openFd, setFdOption, FdOption (..))
import System.Posix.Signals (sigKILL, sigTERM, signalProcessGroup)
import System.Posix.Types (Fd (..))
import System.Process hiding (env)
import Text.Read (readMaybe)

name :: String
name = "vm-haskell"

base :: Int
base = 100 -- node N gets 127.0.0.(base+N)

-- * JSON

data J = JNull | JBool Bool | JNum String | JStr String | JArr [J] | JObj [(String, J)]

parseJ :: String -> Maybe J
parseJ s = case value (skip s) of
  Just (v, rest) | all isSpace rest -> Just v
  _ -> Nothing
  where
    skip = dropWhile isSpace
    value ('{' : r) = object (skip r) []
    value ('[' : r) = array (skip r) []
    value ('"' : r) = fmap (\(t, r') -> (JStr t, r')) (string r "")
    value ('t' : 'r' : 'u' : 'e' : r) = Just (JBool True, r)
    value ('f' : 'a' : 'l' : 's' : 'e' : r) = Just (JBool False, r)
    value ('n' : 'u' : 'l' : 'l' : r) = Just (JNull, r)
    value r@(c : _) | c == '-' || isDigit c =
      let (n, r') = span (\x -> isDigit x || x `elem` "+-.eE") r in Just (JNum n, r')
    value _ = Nothing
    object ('}' : r) acc = Just (JObj (reverse acc), r)
    object ('"' : r) acc = do
      (k, r1) <- string r ""
      r2 <- case skip r1 of ':' : x -> Just (skip x); _ -> Nothing
      (v, r3) <- value r2
      case skip r3 of
        ',' : x -> object (skip x) ((k, v) : acc)
        '}' : x -> Just (JObj (reverse ((k, v) : acc)), x)
        _ -> Nothing
    object _ _ = Nothing
    array (']' : r) acc = Just (JArr (reverse acc), r)
    array r acc = do
      (v, r1) <- value r
      case skip r1 of
        ',' : x -> array (skip x) (v : acc)
        ']' : x -> Just (JArr (reverse (v : acc)), x)
        _ -> Nothing
    string ('"' : r) acc = Just (reverse acc, r)
    string ('\\' : c : r) acc = case c of
      'n' -> string r ('\n' : acc)
      't' -> string r ('\t' : acc)
      'r' -> string r ('\r' : acc)
      'b' -> string r ('\b' : acc)
      'f' -> string r ('\f' : acc)
      'u' | (h, r') <- splitAt 4 r, length h == 4, all isHexDigit h ->
              let cp = fst (head (readHex h))
               in case r' of
                    -- a surrogate pair
                    '\\' : 'u' : r2
                      | cp >= 0xD800 && cp < 0xDC00,
                        (l, r3) <- splitAt 4 r2, length l == 4, all isHexDigit l ->
                          let lo = fst (head (readHex l))
                           in string r3 (chr (0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)) : acc)
                    _ -> string r' (chr cp : acc)
      _ -> string r (c : acc) -- \" \\ \/
    string (c : r) acc = string r (c : acc)
    string [] _ = Nothing

render :: J -> String
render JNull = "null"
render (JBool b) = if b then "true" else "false"
render (JNum n) = n
render (JStr s) = '"' : concatMap esc s ++ "\""
  where
    esc '"' = "\\\""
    esc '\\' = "\\\\"
    esc '\n' = "\\n"
    esc c | ord c < 0x20 = "\\u" ++ replicate (4 - length h) '0' ++ h where h = showHex (ord c) ""
    esc c = [c]
render (JArr vs) = "[" ++ intercalate "," (map render vs) ++ "]"
render (JObj kvs) = "{" ++ intercalate "," [render (JStr k) ++ ":" ++ render v | (k, v) <- kvs] ++ "}"

field :: String -> J -> Maybe J
field k (JObj kvs) = lookup k kvs
field _ _ = Nothing

str :: String -> J -> String
str k j = case field k j of Just (JStr s) -> s; _ -> ""

int :: String -> J -> Maybe Int
int k j = case field k j of Just (JNum n) -> readMaybe n; _ -> Nothing

-- * Answers

-- | A failure answered as {"error": ...}.
data Failure = Failure {retryable :: Bool, code :: String, message :: String}

answer :: Either Failure J -> IO ()
answer (Right r) = putStrLn (render (JObj [("result", r)]))
answer (Left f) =
  putStrLn . render $
    JObj [("error", JObj [("message", JStr (message f)), ("retryable", JBool (retryable f)), ("code", JStr (code f))])]

failWith :: Bool -> String -> IO a
failWith r m = throwIO (ErrorCall (show r ++ "\0" ++ m))

-- * Locks and processes

foreign import ccall unsafe "sys/file.h flock" c_flock :: CInt -> CInt -> IO CInt

lockEx, lockNB, lockUn :: CInt
lockEx = 2
lockNB = 4
lockUn = 8

openLockFile :: FilePath -> IO Fd
openLockFile p = do
  fd <- openFd p ReadWrite (Just 0o644) defaultFileFlags
  setFdOption fd CloseOnExec True
  pure fd

-- | Does some process hold the flock on path? (The agent holds agent.lock
-- for as long as it lives; the kernel drops it when it dies.)
held :: FilePath -> IO Bool
held p = do
  exists <- doesFileExist p
  if not exists
    then pure False
    else bracket (openLockFile p) closeFd $ \(Fd fd) -> do
      rc <- c_flock fd (lockEx + lockNB)
      if rc == 0
        then c_flock fd lockUn >> pure False
        else (== eWOULDBLOCK) <$> getErrno

-- | Run act holding the exclusive lock on path.
withLock :: FilePath -> IO a -> IO a
withLock p act = bracket (openLockFile p) closeFd $ \(Fd fd) -> do
  _ <- c_flock fd lockEx
  act

alive :: FilePath -> IO Bool
alive dir = held (dir </> "agent.lock")

readPid :: FilePath -> IO (Maybe Int)
readPid dir = do
  r <- try (readStrict (dir </> "agent.pid"))
  pure $ case r of
    Right s -> readMaybe (takeWhile (not . isSpace) s)
    Left (_ :: SomeException) -> Nothing
  where
    readStrict f = do s <- readFile f; length s `seq` pure s

-- | Poll every 50 ms for up to n tries.
waitUntil :: Int -> IO Bool -> IO Bool
waitUntil n cond = do
  ok <- cond
  if ok || n <= 0 then pure ok else threadDelay 50000 >> waitUntil (n - 1) cond

tailLog :: FilePath -> IO String
tailLog f = do
  r <- try (readFile f)
  case r of
    Right s -> let ls = lines s in pure (unlines (drop (length ls - 10) ls))
    Left (_ :: SomeException) -> pure ""

-- * Environment

data Env = Env {exe :: String, nodesDir :: FilePath, port :: Int}

getEnv' :: IO Env
getEnv' = do
  e <- fromMaybe "" <$> lookupEnv "DFLOW_EXE"
  project <- fromMaybe "." <$> lookupEnv "DFLOW_PROJECT"
  st <- fromMaybe (project </> ".dflow") <$> lookupEnv "DFLOW_STATE_DIR"
  p <- (>>= readMaybe) <$> lookupEnv "DFLOW_AGENT_PORT"
  pure Env {exe = e, nodesDir = st </> "plugin-nodes", port = fromMaybe 7077 p}

-- * Verbs

vmCreate :: Env -> J -> IO J
vmCreate env req = do
  index <- maybe (failWith False "vm.create: the request has no index") pure (int "index" req)
  unless (index >= 0 && index <= 254 - base) $
    failWith False ("vm.create: index " ++ show index ++ " out of range: " ++ name ++ " makes nodes 0.." ++ show (254 - base))
  let dir = nodesDir env </> show index
      addr = "127.0.0." ++ show (base + index)
  createDirectoryIfMissing True (nodesDir env)
  withLock (nodesDir env </> (show index ++ ".lock")) $ do
    existing <- doesFileExist (dir </> "node.json")
    node <-
      if existing
        then readFile (dir </> "node.json") >>= \s -> case length s `seq` parseJ s of
          Just n -> pure n
          Nothing -> failWith True ("vm.create: " ++ dir </> "node.json" ++ " is unreadable")
        else do
          createDirectoryIfMissing True dir
          rnd <- withBinaryFile "/dev/urandom" ReadMode $ \h -> hSetBuffering h NoBuffering >> mapM (const (hGetChar h)) [1 .. 4 :: Int]
          now <- getCurrentTime
          let hex c = let h = showHex (ord c) "" in if length h < 2 then '0' : h else h
              n =
                JObj $
                  [ ("index", JNum (show index)),
                    ("id", JStr ("vm-haskell-" ++ show index ++ "-" ++ concatMap hex rnd)),
                    ("address", JStr addr),
                    ("agent_url", JStr ("http://" ++ addr ++ ":" ++ show (port env))),
                    ("backend", JStr name)
                  ]
                    ++ [("image", JStr (str "image" req)) | str "image" req /= ""]
                    ++ [("created_at", JStr (formatTime defaultTimeLocale "%Y-%m-%dT%H:%M:%SZ" now))]
          writeFile (dir </> "node.json.tmp") (render n ++ "\n")
          renameFile (dir </> "node.json.tmp") (dir </> "node.json")
          pure n
    up <- alive dir
    -- A create that fails leaves nothing behind: the node it made goes.
    let undo = unless existing $ (stopAgent dir >> removeDirectoryRecursive dir) `catch` \(_ :: SomeException) -> pure ()
    unless up $ (do
      writeFile (dir </> "authorized_keys") (str "keys" req)
      startAgent env dir index (str "id" node) addr) `onException` undo
    pure node

-- | Start the agent in its own session (so it outlives us and its group can
-- be killed as one), output to agent.log, and wait until it runs: the agent
-- writes agent.pid only once it holds its lock and listens on its port.
startAgent :: Env -> FilePath -> Int -> String -> String -> IO ()
startAgent env dir index nodeID addr = do
  ok <- if null (exe env) then pure False else doesFileExist (exe env)
  unless ok $ failWith False ("DFLOW_EXE (" ++ exe env ++ ") is not an executable")
  removeFile (dir </> "agent.pid") `catch` \(_ :: SomeException) -> pure ()
  logH <- openFile (dir </> "agent.log") AppendMode
  nullH <- openFile "/dev/null" ReadMode
  let args = ["agent", "--dir", dir, "--listen", addr ++ ":" ++ show (port env), "--index", show index, "--node-id", nodeID]
  (_, _, _, ph) <-
    createProcess
      (proc (exe env) args)
        { cwd = Just dir,
          std_in = UseHandle nullH,
          std_out = UseHandle logH,
          std_err = UseHandle logH,
          close_fds = True,
          new_session = True
        }
  let ready = do
        pid <- readPid dir
        up <- alive dir
        pure (pid /= Nothing && up)
      exited = (/= Nothing) <$> getProcessExitCode ph
  ok' <- waitUntil 300 $ (||) <$> ready <*> exited
  isReady <- ready
  unless (ok' && isReady) $ do
    gone <- exited
    logTail <- tailLog (dir </> "agent.log")
    failWith True $
      "node " ++ show index ++ ": "
        ++ (if gone then "agent exited" else "agent at " ++ addr ++ " not ready after 15s")
        ++ "; last lines of " ++ dir </> "agent.log" ++ ":\n" ++ logTail

vmDestroy :: Env -> J -> IO J
vmDestroy env req = do
  index <- maybe (failWith False "vm.destroy: the request has no index") pure (int "index" req)
  let dir = nodesDir env </> show index
  exists <- doesDirectoryExist dir
  when exists $ withLock (nodesDir env </> (show index ++ ".lock")) $ do
    cur <- (fmap (str "id") . parseJ <$> readFile (dir </> "node.json")) `catch` \(_ :: SomeException) -> pure Nothing
    let want = str "id" req
        other = want /= "" && maybe False (\c -> c /= "" && c /= want) cur
    unless other $ do
      stopAgent dir
      removeDirectoryRecursive dir
  pure (JObj [])

-- | SIGTERM the agent's process group, SIGKILL after 5 s.
stopAgent :: FilePath -> IO ()
stopAgent dir = do
  up <- alive dir
  when up $ do
    pid <- readPid dir
    case pid of
      Just p | p > 1 -> do
        signalProcessGroup sigTERM (fromIntegral p) `catch` \(_ :: SomeException) -> pure ()
        down <- waitUntil 100 (not <$> alive dir)
        unless down $ do
          signalProcessGroup sigKILL (fromIntegral p) `catch` \(_ :: SomeException) -> pure ()
          down' <- waitUntil 100 (not <$> alive dir)
          unless down' $ failWith True ("agent pid " ++ show p ++ " in " ++ dir ++ " survived SIGKILL")
      _ -> failWith False ("agent in " ++ dir ++ " runs but its pid file is unreadable")

vmList :: Env -> IO J
vmList env = do
  exists <- doesDirectoryExist (nodesDir env)
  entries <- if exists then listDirectory (nodesDir env) else pure []
  let indices = [i | e <- entries, all isDigit e, not (null e), Just i <- [readMaybe e :: Maybe Int]]
  up <- filterM (\i -> alive (nodesDir env </> show i)) indices
  nodes <- forM (sortOn id up) $ \i -> do
    s <- readFile (nodesDir env </> show i </> "node.json")
    maybe (failWith True ("node " ++ show i ++ ": node.json is unreadable")) pure (length s `seq` parseJ s)
  pure (JArr nodes)

dispatch :: Env -> String -> J -> IO J
dispatch env verb req = case verb of
  "describe" -> pure (JObj [("protocol", JNum "1"), ("name", JStr name), ("kinds", JArr [JStr "vm"])])
  "vm.create" -> vmCreate env req
  "vm.destroy" -> vmDestroy env req
  "vm.list" -> vmList env
  _ -> throwIO (ErrorCall ("unknown_verb\0unknown verb " ++ verb))

-- | Every exception becomes an error answer; failWith says if it is retryable.
toFailure :: SomeException -> Failure
toFailure e = case fromException e of
  Just (ErrorCall m) -> case break (== '\0') m of
    ("True", _ : msg) -> Failure True "" msg
    ("False", _ : msg) -> Failure False "" msg
    ("unknown_verb", _ : msg) -> Failure False "unknown_verb" msg
    _ -> Failure True "" m
  Nothing -> Failure True "" (displayException e)

main :: IO ()
main = do
  hSetEncoding stdin utf8
  hSetEncoding stdout utf8
  args <- getArgs
  case args of
    [verb] -> do
      input <- getContents
      let req = fromMaybe (JObj []) (parseJ input)
      env <- getEnv'
      r <- try (dispatch env verb req)
      answer (either (Left . toFailure) Right r)
    _ -> do
      hPutStrLn stderr ("usage: " ++ name ++ " VERB < request.json (dflow plugin protocol 1)")
      exitWith (ExitFailure 2)
