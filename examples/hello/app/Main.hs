-- | hello: serve the hello application on $HOST:$PORT until SIGTERM, then
-- finish the requests in flight and exit 0. The dflow agent sets HOST to
-- 127.0.0.1, so that only its proxy reaches the app; without HOST, hello
-- listens on every IPv4 address, as Warp does by default.
module Main (main) where

import Control.Concurrent.MVar (newEmptyMVar, putMVar, takeMVar)
import Control.Monad (void)
import Data.String (fromString)
import Hello (Settings (..), app)
import Network.Wai.Handler.Warp
  (defaultSettings, runSettings, setGracefulShutdownTimeout, setHost, setInstallShutdownHandler, setPort)
import System.Environment (lookupEnv)
import System.Exit (exitFailure)
import System.IO (hPutStrLn, stderr)
import System.Posix.Signals (Handler (Catch), installHandler, sigTERM)
import Text.Read (readMaybe)

main :: IO ()
main = do
  portVar <- lookupEnv "PORT"
  port <- case portVar >>= readMaybe of
    Just p | p > 0 && p < 65536 -> pure p
    _ -> do
      hPutStrLn stderr ("hello: PORT must be a port number, got " ++ show portVar)
      exitFailure
  -- HOST unset or empty: Warp's default (every IPv4 address).
  host <- lookupEnv "HOST"
  let bindHost = case host of
        Just h | not (null h) -> setHost (fromString h)
        _ -> id
  v <- maybe "unknown" id <$> lookupEnv "DFLOW_VERSION"
  failing <- (== Just "1") <$> lookupEnv "HELLO_FAIL_HEALTH"
  done <- newEmptyMVar
  let onTerm closeSocket = void $ installHandler sigTERM (Catch $ do
        hPutStrLn stderr "hello: SIGTERM: finishing requests in flight"
        closeSocket) Nothing
      settings =
        setPort port
          . bindHost
          . setInstallShutdownHandler onTerm
          . setGracefulShutdownTimeout (Just 30)
          $ defaultSettings
  hPutStrLn stderr ("hello " ++ v ++ " listening on " ++ maybe "" id host ++ ":" ++ show port)
  runSettings settings (app (Settings v failing))
  putMVar done ()
  takeMVar done
  hPutStrLn stderr "hello: stopped"
